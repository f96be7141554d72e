using System.Diagnostics;
using MedServe.Hosting;
using MedServe.IntegrationTests.Support;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace MedServe.IntegrationTests;

/// <summary>
/// Only a held lock is "another MedServe": a data dir that cannot be written says so. The tests
/// run as root, which ignores permission bits, so an unwritable folder is made immutable
/// (chattr +i) and a read-only one is a read-only bind mount; the classification itself is
/// checked on the exceptions .NET raises for each errno.
/// </summary>
public sealed class DataDirLockTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-lock-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Run("chattr", "-i", Path.Combine(_root, "data"));
        Run("umount", Path.Combine(_root, "data"));
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public void A_held_lock_is_another_server_and_is_released_on_dispose()
    {
        var data = Path.Combine(_root, "data");
        using (DataDirLock.Acquire(data, "data"))
        {
            var error = Assert.Throws<OptionsValidationException>(() => DataDirLock.Acquire(data, "data"));
            Assert.Equal("another MedServe is already using the data dir data; give this one its own --data-dir", error.Message);
        }

        DataDirLock.Acquire(data, "data").Dispose();
    }

    [Theory]
    [InlineData(11, DataDirLock.Problem.Held)] // EWOULDBLOCK: flock held (Linux)
    [InlineData(35, DataDirLock.Problem.Held)] // EWOULDBLOCK (macOS)
    [InlineData(unchecked((int)0x80070020), DataDirLock.Problem.Held)] // sharing violation (Windows)
    [InlineData(30, DataDirLock.Problem.ReadOnly)] // EROFS
    [InlineData(17, DataDirLock.Problem.NotAFolder)] // EEXIST: a file where the folder should be
    [InlineData(20, DataDirLock.Problem.NotAFolder)] // ENOTDIR
    [InlineData(28, DataDirLock.Problem.Other)] // ENOSPC
    public void Io_errors_are_classified_by_their_code_not_their_message(int hresult, DataDirLock.Problem problem) =>
        Assert.Equal(problem, DataDirLock.Classify(new IOException("/very/secret/place/medserve.lock: whatever", hresult)));

    [Fact]
    public void Permission_errors_are_not_another_server_and_messages_never_carry_the_os_text()
    {
        var denied = new UnauthorizedAccessException("Access to the path '/very/secret/place/medserve.lock' is denied.");
        Assert.Equal(DataDirLock.Problem.PermissionDenied, DataDirLock.Classify(denied));
        Assert.Equal(DataDirLock.Problem.NotAFolder, DataDirLock.Classify(new DirectoryNotFoundException("/very/secret/place")));
        foreach (var error in new Exception[] { denied, new IOException("/very/secret/place", 30), new IOException("/very/secret/place", 28) })
        {
            var message = DataDirLock.Describe(error, "data");
            Assert.DoesNotContain("another MedServe", message);
            Assert.DoesNotContain("/very/secret", message);
            Assert.Contains("the data dir data ", message);
        }
    }

    [Fact]
    public void A_file_in_the_way_and_a_folder_named_like_the_lock_are_said_so()
    {
        Directory.CreateDirectory(_root);
        File.WriteAllText(Path.Combine(_root, "file"), "not a folder");
        Assert.Contains("a file is in the way", Refusal(Path.Combine(_root, "file"), "file"));
        Assert.Contains("a file is in the way", Refusal(Path.Combine(_root, "file", "data"), "file/data"));

        Directory.CreateDirectory(Path.Combine(_root, "odd", DataDirLock.FileName));
        Assert.Equal("the data dir odd holds a folder named medserve.lock where the lock file belongs; remove it", Refusal(Path.Combine(_root, "odd"), "odd"));
    }

    [Fact]
    public void An_unwritable_data_dir_is_permission_denied_not_another_server()
    {
        var data = Path.Combine(_root, "data");
        Directory.CreateDirectory(data);
        if (!MakeUnwritable(data))
        {
            output.WriteLine("SKIPPED: neither chmod (not root) nor chattr +i makes a folder unwritable here; the classification tests cover it");
            return;
        }

        var message = Refusal(data, "data");
        Assert.StartsWith("the data dir data is not writable by this user: permission denied creating medserve.lock in it", message);
        Assert.DoesNotContain(_root, message);
    }

    [Fact]
    public void A_data_dir_on_a_read_only_file_system_says_so()
    {
        var data = Path.Combine(_root, "data");
        Directory.CreateDirectory(data);
        if (!(Run("mount", "--bind", data, data) && Run("mount", "-o", "remount,ro,bind", data)) || Writable(data))
        {
            output.WriteLine("SKIPPED: cannot make a read-only bind mount here (needs root with CAP_SYS_ADMIN); the classification tests cover it");
            return;
        }

        var message = Refusal(data, "data");
        Assert.StartsWith("the data dir data is on a read-only file system", message);
        Assert.DoesNotContain(_root, message);
    }

    [Fact]
    public async Task The_executable_refuses_a_data_dir_it_cannot_use_with_exit_code_2_and_no_stack_trace()
    {
        Directory.CreateDirectory(_root);
        File.WriteAllText(Path.Combine(_root, "file"), "not a folder");

        var (exitCode, text) = await ServerProcess.RunAsync(_root, "serve", "--data-dir", "file", "--http-port", "0", "--grpc-port", "0");

        Assert.Equal(2, exitCode);
        Assert.Contains("medserve: the data dir file cannot be created: a file is in the way", text);
        Assert.DoesNotContain("another MedServe", text);
        Assert.DoesNotContain(_root, text);
        Assert.DoesNotContain("   at ", text);
    }

    private static string Refusal(string dataDir, string shownAs) =>
        Assert.Throws<OptionsValidationException>(() => DataDirLock.Acquire(dataDir, shownAs).Dispose()).Message;

    private static bool MakeUnwritable(string folder)
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        if (Environment.UserName != "root")
        {
            File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        }
        else
        {
            Run("chattr", "+i", folder);
        }

        return !Writable(folder);
    }

    private static bool Writable(string folder)
    {
        try
        {
            File.WriteAllText(Path.Combine(folder, "probe"), "");
            File.Delete(Path.Combine(folder, "probe"));
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static bool Run(string tool, params string[] arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(tool, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            process.WaitForExit(10_000);
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no such tool
        }
    }
}
