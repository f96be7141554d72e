using System.Diagnostics;

namespace MedServe.IntegrationTests.Support;

/// <summary>Debian's headless chromium, with every host name unresolvable (.ci/run installs it).</summary>
internal static class Chromium
{
    /// <summary>The page's DOM after its scripts ran, from headless chromium with every host name unresolvable.</summary>
    public static async Task<string> DomAsync(string file, string scratch)
    {
        var start = new ProcessStartInfo("chromium")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[]
        {
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--user-data-dir=" + Path.Combine(scratch, "chromium"), "--virtual-time-budget=10000", "--dump-dom", new Uri(file).AbsoluteUri,
        })
        {
            start.ArgumentList.Add(argument);
        }

        using var chromium = Process.Start(start) ?? throw new InvalidOperationException("chromium did not start: .ci/run installs Debian's chromium");
        var output = chromium.StandardOutput.ReadToEndAsync();
        var errors = chromium.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await chromium.WaitForExitAsync(timeout.Token);
        var dom = await output;
        Assert.True(dom.Contains("</html>", StringComparison.Ordinal), "chromium gave no DOM: " + await errors);
        return dom;
    }
}
