using System.Net;
using System.Reflection;
using k8s;
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
        var objects = KubernetesYaml.LoadAllFromString(await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "kubernetes", "medserve.yaml")),
            new Dictionary<string, Type> { ["monitoring.coreos.com/v1/ServiceMonitor"] = typeof(ServiceMonitor) });
        var deployment = objects.OfType<V1Deployment>().Single();
        var pod = deployment.Spec.Template.Spec;
        var container = pod.Containers.Single();

        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        using var anonymous = server.Client(null);
        foreach (var probe in new[] { container.StartupProbe, container.ReadinessProbe, container.LivenessProbe })
        {
            // Probes carry no key: the health routes must answer without one.
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(probe.HttpGet.Path)).StatusCode);
        }

        Assert.Equal("/v2/health/ready", container.ReadinessProbe.HttpGet.Path);
        Assert.Equal("/v2/health/live", container.LivenessProbe.HttpGet.Path);
        var defaults = new MedServe.Hosting.ServerOptions();
        Assert.Equal(defaults.HttpPort, container.Ports.Single(p => p.Name == "http").ContainerPort);
        Assert.Equal(defaults.GrpcPort, container.Ports.Single(p => p.Name == "grpc").ContainerPort);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.Contains(container.VolumeMounts, m => m.MountPath == "/tmp"); // a read-only root needs its scratch
        foreach (var variable in container.Env)
        {
            AssertIsSetting(variable.Name);
        }

        // The autoscaler's and the ServiceMonitor's metric names are in the server's /metrics.
        using var admin = server.Client(server.AdminKey);
        var metrics = await (await admin.GetAsync(objects.OfType<ServiceMonitor>().Single().Spec.Endpoints.Single().Path)).Content.ReadAsStringAsync();
        var hpa = objects.OfType<V2HorizontalPodAutoscaler>().Single();
        Assert.Contains($"# TYPE {hpa.Spec.Metrics.Single().Pods.Metric.Name} gauge", metrics);
        Assert.Equal(deployment.Metadata.Name, hpa.Spec.ScaleTargetRef.Name);

        Assert.Equal("1", objects.OfType<V1PodDisruptionBudget>().Single().Spec.MinAvailable.Value); // a voluntary eviction leaves one replica serving
        Assert.Contains("Egress", objects.OfType<V1NetworkPolicy>().Single().Spec.PolicyTypes);
        Assert.Contains(objects.OfType<V1Secret>(), s => s.StringData.ContainsKey("master.keys"));
        var service = objects.OfType<V1Service>().Single();
        Assert.Equal(["http", "grpc"], service.Spec.Ports.Select(p => p.TargetPort.Value));
    }

    [Fact]
    public async Task The_dockerfile_and_compose_file_use_real_settings_and_commands()
    {
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "docker", "Dockerfile"));
        Assert.Contains("USER 10001:10001", dockerfile);
        Assert.Contains("medserve.dll samples /models", dockerfile); // the samples are provisioned at build time
        foreach (var line in dockerfile.Split('\n').Where(l => l.TrimStart().StartsWith("MEDSERVE_", StringComparison.Ordinal) || l.Contains("ENV MEDSERVE_", StringComparison.Ordinal)))
        {
            AssertIsSetting(line.Replace("ENV ", "", StringComparison.Ordinal).Trim().Split('=')[0]);
        }

        var compose = new YamlDotNet.Serialization.DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "docker", "docker-compose.yml")));
        var services = (Dictionary<object, object>)compose["services"];
        Assert.Contains("medserve-1", services.Keys.Cast<string>());
        Assert.Contains("medserve-2", services.Keys.Cast<string>());
        var environment = (Dictionary<object, object>)((Dictionary<object, object>)services["medserve-1"])["environment"];
        foreach (var name in environment.Keys.Cast<string>())
        {
            AssertIsSetting(name);
        }

        // The samples command the image runs exists.
        Assert.Equal(0, await new System.CommandLine.RootCommand { MedServe.Cli.SamplesCommand.Create() }.Parse(["samples", "--help"]).InvokeAsync());
    }

    /// <summary>A MEDSERVE_* variable names a real option: each level, read as EnvironmentConfiguration reads it, is a property.</summary>
    private static void AssertIsSetting(string variable)
    {
        Assert.StartsWith("MEDSERVE_", variable);
        var type = typeof(MedServe.Hosting.ServerOptions);
        foreach (var part in variable["MEDSERVE_".Length..].Split("__"))
        {
            var property = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .FirstOrDefault(p => string.Equals(p.Name, part.Replace("_", "", StringComparison.Ordinal), StringComparison.OrdinalIgnoreCase));
            Assert.True(property is not null, $"{variable}: '{part}' is no setting of {type.Name}");
            type = property!.PropertyType;
        }
    }

    /// <summary>The Prometheus operator's ServiceMonitor, as much of it as the check reads.</summary>
    private sealed class ServiceMonitor : IKubernetesObject<V1ObjectMeta>
    {
        public string ApiVersion { get; set; } = "";

        public string Kind { get; set; } = "";

        public V1ObjectMeta Metadata { get; set; } = new();

        public ServiceMonitorSpec Spec { get; set; } = new();
    }

    private sealed class ServiceMonitorSpec
    {
        public List<ServiceMonitorEndpoint> Endpoints { get; set; } = [];
    }

    private sealed class ServiceMonitorEndpoint
    {
        public string Port { get; set; } = "";

        public string Path { get; set; } = "";
    }
}
