using k8s.Models;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>
/// The deployment files in deploy/ against the server they deploy: every Kubernetes manifest
/// loaded into typed objects (KubernetesClient's YAML loader), its probes, ports, environment and
/// metric names checked against the server's real routes, options and /metrics; the compose file's
/// and Dockerfile's settings likewise.
/// </summary>
public sealed class DeployManifestTests
{
    private static readonly string Root = RepositoryRoot.Path;

    [Fact]
    public async Task The_kubernetes_manifests_load_as_typed_objects_and_name_real_routes_ports_settings_and_metrics()
    {
        var objects = KubernetesManifestChecks.Load(await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "kubernetes", "medserve.yaml")));

        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        await KubernetesManifestChecks.AssertMatchServerAsync(objects, server.Client, server.AdminKey);

        Assert.Single(objects.OfType<V2HorizontalPodAutoscaler>());
        Assert.Single(objects.OfType<V1PodDisruptionBudget>());
        Assert.Single(objects.OfType<KubernetesManifestChecks.ServiceMonitor>());
        Assert.Contains(objects.OfType<V1Secret>(), s => s.StringData.ContainsKey("master.keys"));

        // The shared Redis comes from the Secret, in a form the server accepts, and the NetworkPolicy lets the pods reach it.
        var keys = objects.OfType<V1Secret>().Single(s => s.Metadata.Name == "medserve-keys");
        var redis = KubernetesManifestChecks.Server(objects).Spec.Template.Spec.Containers.Single().Env.Single(e => e.Name == "MEDSERVE_REDIS__CONNECTIONSTRING");
        Assert.Null(redis.Value);
        Assert.Equal(("medserve-keys", "redis"), (redis.ValueFrom.SecretKeyRef.Name, redis.ValueFrom.SecretKeyRef.Key));
        Assert.Null(new MedServe.Storage.RedisOptions { ConnectionString = keys.StringData["redis"] }.Problem());
        Assert.Contains(objects.OfType<V1NetworkPolicy>().Single().Spec.Egress, rule => rule.Ports.Any(p => p.Port.Value == "6379"));
    }

    [Fact]
    public async Task The_dockerfile_and_compose_file_use_real_settings_and_commands()
    {
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "docker", "Dockerfile"));
        Assert.Contains("USER 10001:10001", dockerfile);
        Assert.Contains("medserve.dll samples /models", dockerfile); // the samples are provisioned at build time
        foreach (var line in dockerfile.Split('\n').Where(l => l.TrimStart().StartsWith("MEDSERVE_", StringComparison.Ordinal) || l.Contains("ENV MEDSERVE_", StringComparison.Ordinal)))
        {
            KubernetesManifestChecks.AssertIsSetting(line.Replace("ENV ", "", StringComparison.Ordinal).Trim().Split('=')[0]);
        }

        var compose = new YamlDotNet.Serialization.DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "docker", "docker-compose.yml")));
        var services = (Dictionary<object, object>)compose["services"];
        Assert.Contains("medserve-1", services.Keys.Cast<string>());
        Assert.Contains("medserve-2", services.Keys.Cast<string>());
        var environment = (Dictionary<object, object>)((Dictionary<object, object>)services["medserve-1"])["environment"];
        foreach (var name in environment.Keys.Cast<string>())
        {
            KubernetesManifestChecks.AssertIsSetting(name);
        }

        // The replicas share the compose file's PostgreSQL and Redis, named as the server reads them.
        Assert.Contains("postgres", services.Keys.Cast<string>());
        Assert.Contains("redis", services.Keys.Cast<string>());
        static string Substituted(object value) => System.Text.RegularExpressions.Regex.Replace((string)value, @"\$\{[A-Z_]+:\?[^}]*\}", "secret");
        Assert.Null(new MedServe.Storage.RedisOptions { ConnectionString = Substituted(environment["MEDSERVE_REDIS__CONNECTIONSTRING"]) }.Problem());
        Assert.StartsWith("redis:6379,", Substituted(environment["MEDSERVE_REDIS__CONNECTIONSTRING"]), StringComparison.Ordinal);
        Assert.Contains("Host=postgres;", Substituted(environment["MEDSERVE_STORE__CONNECTIONSTRING"]), StringComparison.Ordinal);

        // The samples command the image runs exists.
        Assert.Equal(0, await new System.CommandLine.RootCommand { MedServe.Cli.SamplesCommand.Create() }.Parse(["samples", "--help"]).InvokeAsync());
    }
}
