using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using MedServe.Lifecycle;
using MedServe.Samples;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests.Support;

/// <summary>
/// The server most tests share: a <see cref="RunningServer"/> over the three sample models, an
/// every-datatype identity model, and a model whose ONNX file is corrupt.
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const long BodyLimit = 8 * 1024 * 1024;

    private RunningServer _server = null!;

    public string Root => _server.Root;

    public string Repository => _server.Repository;

    /// <summary>Carries the admin key the server created on first start, as every client must.</summary>
    public HttpClient Client { get; private set; } = null!;

    /// <summary>The admin key from &lt;data-dir&gt;/admin.key.</summary>
    public string AdminKey => _server.AdminKey;

    public Uri HttpAddress => _server.HttpAddress;

    public Uri GrpcAddress => _server.GrpcAddress;

    public global::Grpc.Net.Client.GrpcChannel GrpcChannel { get; private set; } = null!;

    public MedServe.Grpc.Protocol.GRPCInferenceService.GRPCInferenceServiceClient Grpc { get; private set; } = null!;

    public ModelManager Models => Service<ModelManager>();

    /// <summary>The sample models beside the tests: the one folder local model sources may come from.</summary>
    public static string SamplesFolder { get; } = Path.Combine(AppContext.BaseDirectory, "samples");

    public async Task InitializeAsync()
    {
        _server = await RunningServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["MedServe:Http:MaxRequestBodyBytes"] = BodyLimit.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["MedServe:Registry:AllowedSourceHosts:0"] = "127.0.0.1",

                // The access-control walks are one loopback client refused on purpose thousands of times.
                ["MedServe:Limits:RefusalsPerSecondPerAddress"] = "0",
                ["MedServe:Registry:AllowedSourceDirectories:0"] = SamplesFolder,
            },
            provision: repository =>
            {
                SampleModels.ProvisionBreastCancer(repository);
                SampleModels.ProvisionResNet18(repository);
                SampleModels.ProvisionRisk(repository);
                IdentityModel.WriteAll(repository);
                Directory.CreateDirectory(Path.Combine(repository, "corrupt", "1"));
                File.WriteAllText(Path.Combine(repository, "corrupt", "1", "model.onnx"), "this is not an ONNX file");
            });
        Client = CreateClient(AdminKey);
        GrpcChannel = CreateGrpcChannel(AdminKey);
        Grpc = new MedServe.Grpc.Protocol.GRPCInferenceService.GRPCInferenceServiceClient(GrpcChannel);
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        GrpcChannel.Dispose();
        await _server.DisposeAsync();
    }

    public T Service<T>()
        where T : notnull => _server.Services.GetRequiredService<T>();

    /// <summary>A REST client sending the credential (none for null).</summary>
    public HttpClient CreateClient(string? credential) => _server.Client(credential);

    /// <summary>A gRPC channel sending the credential as metadata on every call, as tritonclient.grpc does with its headers.</summary>
    public global::Grpc.Net.Client.GrpcChannel CreateGrpcChannel(string? credential) => _server.GrpcChannel(credential);

    /// <summary>Creates a key through the API and returns its secret.</summary>
    public async Task<string> CreateKeyAsync(string name, params string[] scopes)
    {
        using var response = await PostJsonAsync("/v1/keys", JsonSerializer.Serialize(new { name, scopes }));
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Created, body.ToString());
        return body.GetProperty("key").GetString()!;
    }

    public Task<HttpResponseMessage> PostJsonAsync(string path, string json) =>
        Client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));

    /// <summary>Posts a binary-extension body: the JSON header, then the raw tensors, as tritonclient.http does.</summary>
    public Task<HttpResponseMessage> PostBinaryAsync(string path, string json, params byte[][] tensors)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var body = header.Concat(tensors.SelectMany(t => t)).ToArray();
        var content = new ByteArrayContent(body);
        content.Headers.Add("Inference-Header-Content-Length", header.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return Client.PostAsync(path, content);
    }

    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Splits a binary-extension response into its JSON header and the binary outputs that follow.</summary>
    public static async Task<(JsonElement Header, byte[] Binary)> SplitAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsByteArrayAsync();
        var length = response.Headers.TryGetValues("Inference-Header-Content-Length", out var values)
            ? int.Parse(values.Single(), System.Globalization.CultureInfo.InvariantCulture)
            : body.Length;
        var header = JsonDocument.Parse(body.AsMemory(0, length)).RootElement.Clone();
        return (header, body[length..]);
    }

    public static MediaTypeHeaderValue? ContentType(HttpResponseMessage response) => response.Content.Headers.ContentType;
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "server";
}
