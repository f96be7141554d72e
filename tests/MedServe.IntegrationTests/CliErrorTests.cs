using System.Globalization;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>
/// Every CLI verb that calls a server, run as the executable: no server, a wrong address or a
/// refusal is one line saying what and where, with exit code 2 (cannot reach) or 1 (refused), never a stack trace.
/// </summary>
public sealed class CliErrorTests : IDisposable
{
    private readonly string _workingDirectory = Path.Combine(Path.GetTempPath(), "medserve-cli-" + Guid.NewGuid().ToString("N"));

    public CliErrorTests()
    {
        // A folder for `models import`, so that it has something to send.
        Directory.CreateDirectory(Path.Combine(_workingDirectory, "repository", "risk", "1"));
        File.Copy(Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx"), Path.Combine(_workingDirectory, "repository", "risk", "1", "model.onnx"));
    }

    public void Dispose() => Directory.Delete(_workingDirectory, recursive: true);

    public static TheoryData<string[]> Verbs() => new()
    {
        new[] { "keys", "create", "--name", "ward", "--scopes", "infer" },
        new[] { "keys", "list" },
        new[] { "keys", "revoke", "ward" },
        new[] { "keys", "expire", "ward" },
        new[] { "models", "list" },
        new[] { "models", "import", "repository" },
        new[] { "models", "promote", "risk", "1", "--reason", "r" },
        new[] { "models", "rollback", "risk", "--reason", "r" },
    };

    [Theory]
    [MemberData(nameof(Verbs))]
    public async Task Without_a_running_server_a_verb_says_where_it_looked_and_how_to_start_one(string[] verb)
    {
        var address = $"http://127.0.0.1:{ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture)}";

        var (exitCode, output) = await ServerProcess.RunAsync(_workingDirectory, [.. verb, "--data-dir", "X", "--server", address]);

        Assert.Equal(2, exitCode);
        Assert.Contains($"medserve: the server is not reachable at {address}: nothing answers there; start it with 'medserve serve --data-dir X', or give its address with --server", output);
        AssertNoStackTrace(output);
    }

    [Fact]
    public async Task Pull_names_the_mlflow_server_it_could_not_reach()
    {
        var mlflow = $"http://127.0.0.1:{ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture)}";

        var (exitCode, output) = await ServerProcess.RunAsync(_workingDirectory, "models", "pull", "risk", "1", "--mlflow", mlflow);

        Assert.Equal(2, exitCode);
        Assert.Contains($"medserve: the server is not reachable at {mlflow}: nothing answers there; check the MLflow tracking server's address (--mlflow)", output);
        AssertNoStackTrace(output);
    }

    [Fact]
    public async Task Importing_a_folder_that_does_not_exist_says_so()
    {
        var (exitCode, output) = await ServerProcess.RunAsync(_workingDirectory, "models", "import", "no-such-folder", "--server", "http://127.0.0.1:1");

        Assert.Equal(2, exitCode);
        Assert.Contains("medserve: no folder 'no-such-folder' to import", output);
        AssertNoStackTrace(output);
    }

    [Theory]
    [InlineData("not a url")]
    [InlineData("ftp://127.0.0.1:8000")]
    public async Task A_server_address_that_is_not_http_is_refused_before_any_call(string address)
    {
        var (exitCode, output) = await ServerProcess.RunAsync(_workingDirectory, "keys", "list", "--server", address);

        Assert.Equal(2, exitCode);
        Assert.Contains("medserve: --server must be an http:// or https:// address, e.g. http://127.0.0.1:8000", output);
        AssertNoStackTrace(output);
    }

    [Fact]
    public async Task A_refusal_is_the_servers_message_with_exit_code_1()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        var url = server.HttpAddress.ToString().TrimEnd('/');

        var (denied, deniedOutput) = await ServerProcess.RunAsync(_workingDirectory, "keys", "list", "--server", url, "--api-key", "ms_0000_nope");
        Assert.Equal(1, denied);
        Assert.Contains($"medserve: {url} refused: 401: the API key is unknown, expired or revoked", deniedOutput);
        AssertNoStackTrace(deniedOutput);

        var (missing, missingOutput) = await ServerProcess.RunAsync(_workingDirectory, "models", "rollback", "no-such-model", "--reason", "x", "--server", url, "--api-key", server.AdminKey);
        Assert.Equal(1, missing);
        Assert.Contains($"medserve: {url} refused: 400: model 'no-such-model' has no earlier 'champion' version to roll back to", missingOutput);
        AssertNoStackTrace(missingOutput);

        // The admin key from --data-dir, as the server wrote it there.
        var (listed, listedOutput) = await ServerProcess.RunAsync(_workingDirectory, "keys", "list", "--server", url, "--data-dir", server.Root);
        Assert.True(listed == 0, listedOutput);
        Assert.Contains("admin", listedOutput);
    }

    private static void AssertNoStackTrace(string output)
    {
        Assert.DoesNotContain("Unhandled exception", output);
        Assert.DoesNotContain("   at ", output);
    }
}
