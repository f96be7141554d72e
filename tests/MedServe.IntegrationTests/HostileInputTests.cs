using System.Net;
using System.Text;
using System.Text.Json;
using MedServe.IntegrationTests.Support;
using Xunit.Abstractions;

namespace MedServe.IntegrationTests;

/// <summary>
/// A seeded generator throws malformed, truncated, oversized and mistyped requests at the
/// inference, repository, registry and MLflow endpoints: every answer must be a 4xx with a JSON
/// error, never a 5xx, and the server must still answer a valid request correctly afterwards.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class HostileInputTests(ServerFixture server, ITestOutputHelper output)
{
    private const int Count = 1200;

    private static readonly string[] Paths =
    [
        "/v2/models/risk/infer", "/v2/models/risk/versions/1/infer", "/v2/models/id-bytes/infer", "/v2/models/id-fp16/infer",
        "/v2/models/breast-cancer/infer", "/v2/models/nope/infer", "/v2/models/risk/versions/x/infer", "/v2/models/%2e%2e/infer",
        "/v2/repository/index", "/v2/repository/models/risk/load", "/v2/repository/models/..%2f..%2fetc/load", "/v2/repository/models/nope/unload",
        "/v1/registry/models", "/v1/registry/models/hostile/versions", "/v1/registry/models/hostile/aliases/champion", "/v1/registry/models/hostile/rollback",
        "/api/2.0/mlflow/registered-models/create", "/api/2.0/mlflow/model-versions/create", "/api/2.0/mlflow/registered-models/alias",
        "/api/2.0/mlflow/model-versions/transition-stage", "/api/2.0/mlflow/registered-models/rename",
    ];

    [Fact]
    public async Task A_thousand_hostile_requests_get_4xx_json_errors_and_the_server_still_serves()
    {
        var random = new Random(20261127);
        var headerRandom = new Random(5); // a stream of its own, so the bodies stay the same sequence
        var statuses = new Dictionary<int, int>();
        var failures = new List<string>();
        for (var i = 0; i < Count; i++)
        {
            var (method, path, body, headerLength, contentType) = Generate(random);
            using var request = new HttpRequestMessage(method, path);
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
                if (headerLength is not null)
                {
                    request.Content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", headerLength);
                }
            }

            AddHostileHeaders(request, headerRandom);
            using var response = await server.Client.SendAsync(request);
            var status = (int)response.StatusCode;
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            var text = await response.Content.ReadAsStringAsync();
            if (text.Contains(server.Root, StringComparison.Ordinal))
            {
                failures.Add($"#{i} {method} {path}: {status} names the data dir: {Cut(text)}");
            }

            if (status >= 500)
            {
                failures.Add($"#{i} {method} {path}: {status} {Cut(text)} [hl={headerLength} ct={contentType} body={Cut(Encoding.UTF8.GetString(body ?? []))}]");
            }
            else if (status >= 400 && status != 405 && !IsJsonError(text))
            {
                failures.Add($"#{i} {method} {path}: {status} without a JSON error: {Cut(text)}");
            }
        }

        output.WriteLine($"{Count} hostile requests: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}")));
        failures.ForEach(output.WriteLine);
        Assert.Empty(failures);
        Assert.True(statuses.Where(s => s.Key >= 400).Sum(s => s.Value) > Count * 0.9, "most hostile requests must be refused");

        var ones = string.Join(",", Enumerable.Repeat("1", 30));
        using var valid = await server.PostJsonAsync("/v2/models/risk/infer", $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{ones}}]}]}""");
        Assert.Equal(0.5740907, (await ServerFixture.JsonAsync(valid)).GetProperty("outputs")[0].GetProperty("data")[0].GetDouble(), 6);
    }

    private static (HttpMethod, string, byte[]?, string?, string) Generate(Random random)
    {
        var path = Paths[random.Next(Paths.Length)];
        var method = random.Next(10) switch { 0 => HttpMethod.Put, 1 => HttpMethod.Delete, 2 => HttpMethod.Patch, _ => HttpMethod.Post };
        var json = ValidLooking(random);
        byte[] body = random.Next(11) switch
        {
            0 => Encoding.UTF8.GetBytes(json[..random.Next(json.Length)]),                    // truncated
            1 => Mutate(Encoding.UTF8.GetBytes(json), random),                                  // flipped bytes
            2 => RandomBytes(random, random.Next(1, 4096)),                                    // noise
            3 => Encoding.UTF8.GetBytes(json.Replace("FP32", Pick(random, "FP33", "fp32", "", "BYTES", "BF16", "INT8"), StringComparison.Ordinal)),
            4 => Encoding.UTF8.GetBytes(json.Replace("[1,30]", Pick(random, "[-1,30]", "[1,30,1]", "[]", "[99999999999,30]", "[1,\"30\"]", "null"), StringComparison.Ordinal)),
            5 => Encoding.UTF8.GetBytes(new string('[', random.Next(10, 2000))),              // deep nesting
            6 => Encoding.UTF8.GetBytes(json.Replace("\"input\"", Pick(random, "\"\"", "null", "1", "\"../x\"", "\"" + new string('a', 5000) + "\""), StringComparison.Ordinal)),
            7 => Encoding.UTF8.GetBytes("{\"parameters\":{\"binary_data_output\":" + Pick(random, "1", "\"yes\"", "{}", "[]") + ",\"priority\":" + Pick(random, "-1", "\"high\"", "1e99", "99") + ",\"timeout\":" + Pick(random, "-5", "\"x\"", "0") + "}," + json[1..]),
            8 => Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { parameters = new { config = JsonSerializer.Serialize(new { name = "risk", default_model_filename = Pick(random, "/etc/passwd", "../../admin.key", "/proc/self/environ", "model.onnx/../../../secrets/pseudonym.key", "a\u0000b", "..", "C:\\x.onnx") }) } })),
            9 => Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { name = "hostile", source = Pick(random, "/proc/self/environ", "file://localhost/etc/passwd", "file:///../../etc/shadow", "http://169.254.169.254/latest/meta-data", "http://127.0.0.1:1/x.onnx", "\\\\server\\share\\m.onnx", "file://evil.example/x.onnx", "/dev/zero", "file:///proc/self/fd/0", "/tmp/../root/.medserve/admin.key") })),
            _ => Encoding.UTF8.GetBytes("{\"name\":" + Pick(random, "1", "null", "\"\"", "\"" + new string('x', 300) + "\"", "{}") + ",\"version\":" + Pick(random, "\"abc\"", "-1", "0", "1.5", "\"1\"") + ",\"source\":" + Pick(random, "\"/etc/passwd\"", "\"s3://x\"", "7", "\"file:///nonexistent\"") + "}"),
        };
        string? headerLength = random.Next(4) == 0 ? Pick(random, "-1", "abc", "999999999", "0", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), "5") : null;
        var contentType = random.Next(5) == 0 ? Pick(random, "multipart/form-data; boundary=zz", "text/plain", "application/x-www-form-urlencoded") : "application/json";
        return (method, path, body, headerLength, contentType);
    }

    /// <summary>One request in four gets a mangled credential, a strange patient header, too many headers or a huge one.</summary>
    private static void AddHostileHeaders(HttpRequestMessage request, Random random)
    {
        switch (random.Next(16))
        {
            case 0:
                request.Headers.TryAddWithoutValidation("Authorization", Pick(random,
                    "Bearer", "Bearer ", "Basic YTpi", "bearer ms_", "Bearer ms_x_y_z", "Bearer ms__", "Bearer " + new string('k', 4000),
                    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "Bearer ms_0123456789abcdef_" + new string('A', 43), "Negotiate abc"));
                break;
            case 1:
                request.Headers.TryAddWithoutValidation("X-Patient-Id", Pick(random, "", " ", new string('9', 3000), "p@tient=1&x=\"y\"", "1;DROP TABLE audit_records"));
                break;
            case 2:
                for (var i = 0; i < 70; i++)
                {
                    request.Headers.TryAddWithoutValidation($"X-Hostile-{i}", "1");
                }

                break;
            case 3:
                request.Headers.TryAddWithoutValidation("X-Hostile", new string('h', random.Next(17_000, 60_000)));
                break;
        }
    }

    private static string ValidLooking(Random random)
    {
        var data = string.Join(",", Enumerable.Range(0, 30).Select(_ => (random.NextDouble() * 10).ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
        return $$"""{"id":"h{{random.Next()}}","inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{data}}]}],"outputs":[{"name":"output"}]}""";
    }

    private static byte[] Mutate(byte[] bytes, Random random)
    {
        for (var i = 0; i < 1 + random.Next(5); i++)
        {
            bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
        }

        return bytes;
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static string Pick(Random random, params string[] choices) => choices[random.Next(choices.Length)];

    private static bool IsJsonError(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.TryGetProperty("error", out _) || document.RootElement.TryGetProperty("message", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static string Cut(string text) => text.Length > 200 ? text[..200] : text;
}
