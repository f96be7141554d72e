using System.Collections;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using k8s.Models;
using MedServe.Hosting;

namespace MedServe.IntegrationTests.Support;

/// <summary>
/// A real server configured as a rendered MedServe pod would be: the container's MEDSERVE_*
/// variables (secret references read from the rendered Secrets), each mounted path pointed at a
/// local folder, and each mounted Secret written there as files. Only the address and ports are
/// the test's own (loopback, free ports).
/// </summary>
internal sealed class RenderedPod : IAsyncDisposable
{
    private readonly string _root;

    private RenderedPod(string root, RunningServer server, X509Certificate2 certificate)
    {
        _root = root;
        Server = server;
        Certificate = certificate;
    }

    public RunningServer Server { get; }

    /// <summary>The certificate from the pod's TLS Secret, which the server must present.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>Where the pod's /data is.</summary>
    public string DataDir => Server.Root;

    /// <summary>The admin key the pod was given (Auth:AdminKeyFile from its Secret), else the one the server made.</summary>
    public string AdminKey => _adminKeyFile is not null ? File.ReadAllText(_adminKeyFile).Trim() : Server.AdminKey;

    private string? _adminKeyFile;

    public static async Task<RenderedPod> StartAsync(IList<object> objects)
    {
        var pod = KubernetesManifestChecks.Server(objects).Spec.Template.Spec;
        var container = pod.Containers.Single(c => c.Name == "medserve");
        var root = Path.Combine(Path.GetTempPath(), "medserve-pod-" + Guid.NewGuid().ToString("N")[..12]);
        var folders = new Dictionary<string, string>();
        foreach (var mount in container.VolumeMounts)
        {
            var folder = Path.Combine(root, mount.Name);
            Directory.CreateDirectory(folder);
            var secret = pod.Volumes.Single(v => v.Name == mount.Name).Secret;
            if (secret is not null)
            {
                foreach (var (key, value) in Secret(objects, secret.SecretName).StringData)
                {
                    await File.WriteAllTextAsync(Path.Combine(folder, key), value);
                }
            }

            folders[mount.MountPath] = folder;
        }

        var variables = new Hashtable();
        foreach (var variable in container.Env)
        {
            var value = variable.Value ?? Secret(objects, variable.ValueFrom.SecretKeyRef.Name).StringData[variable.ValueFrom.SecretKeyRef.Key];
            var mountPath = folders.Keys.FirstOrDefault(m => value == m || value.StartsWith(m + "/", StringComparison.Ordinal));
            variables[variable.Name] = mountPath is null ? value : folders[mountPath] + value[mountPath.Length..];
        }

        var settings = EnvironmentConfiguration.Read(variables);
        // RunningServer sets these itself: loopback only, and the folder standing for /data.
        Assert.Equal(folders["/data"], settings["MedServe:DataDir"]);
        settings.Remove("MedServe:Host");
        settings.Remove("MedServe:DataDir");
        var tls = Secret(objects, pod.Volumes.Single(v => v.Name == "tls").Secret.SecretName).StringData;
        var certificate = X509Certificate2.CreateFromPem(tls["tls.crt"]);
        try
        {
            return new RenderedPod(root, await RunningServer.StartAsync(settings, root: folders["/data"]), certificate)
            {
                _adminKeyFile = settings.GetValueOrDefault("MedServe:Auth:AdminKeyFile"),
            };
        }
        catch
        {
            certificate.Dispose();
            Directory.Delete(root, recursive: true);
            throw;
        }
    }

    /// <summary>A client that trusts the pod's certificate alone, carrying the credential given.</summary>
    public HttpClient Client(string? credential)
    {
        var expected = Certificate.RawData;
        var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented is not null && presented.RawData.AsSpan().SequenceEqual(expected) };
        var client = new HttpClient(handler) { BaseAddress = Server.HttpAddress };
        if (credential is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", credential);
        }

        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Certificate.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private static V1Secret Secret(IList<object> objects, string name) => objects.OfType<V1Secret>().Single(s => s.Metadata.Name == name);
}
