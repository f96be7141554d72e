using System.Net;
using System.Reflection;
using k8s;
using k8s.Models;

namespace MedServe.IntegrationTests.Support;

/// <summary>
/// What the plain Kubernetes manifests and the Helm chart's renders must both get right, checked
/// on KubernetesClient's typed objects against a really running server: probe paths, ports,
/// MEDSERVE_* settings, metric names, the security context, and the objects that select the pods.
/// </summary>
internal static class KubernetesManifestChecks
{
    public static IList<object> Load(string yaml) =>
        KubernetesYaml.LoadAllFromString(yaml, new Dictionary<string, Type> { ["monitoring.coreos.com/v1/ServiceMonitor"] = typeof(ServiceMonitor) });

    /// <summary>The MedServe Deployment: the one whose container is named medserve.</summary>
    public static V1Deployment Server(IList<object> objects) =>
        objects.OfType<V1Deployment>().Single(d => d.Spec.Template.Spec.Containers.Any(c => c.Name == "medserve"));

    public static bool Selects(IDictionary<string, string> selector, IDictionary<string, string>? labels) =>
        labels is not null && selector.All(pair => labels.TryGetValue(pair.Key, out var value) && value == pair.Value);

    /// <summary>
    /// The objects against a running server. The autoscaler, disruption budget and ServiceMonitor
    /// are checked where present; the caller says which it expects.
    /// </summary>
    /// <param name="client">A client of the server carrying the credential given (null: none).</param>
    public static async Task AssertMatchServerAsync(IList<object> objects, Func<string?, HttpClient> client, string adminKey)
    {
        var deployment = Server(objects);
        var pod = deployment.Spec.Template;
        var container = pod.Spec.Containers.Single(c => c.Name == "medserve");

        using var anonymous = client(null);
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

        Assert.True(pod.Spec.SecurityContext.RunAsNonRoot);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.False(container.SecurityContext.AllowPrivilegeEscalation);
        Assert.Contains(container.VolumeMounts, m => m.MountPath == "/tmp"); // a read-only root needs its scratch
        Assert.Contains(container.VolumeMounts, m => m.MountPath == "/data");
        foreach (var variable in container.Env)
        {
            AssertIsSetting(variable.Name);
        }

        // The autoscaler's and the ServiceMonitor's metric names are in the server's /metrics.
        using var admin = client(adminKey);
        var monitor = objects.OfType<ServiceMonitor>().SingleOrDefault();
        var metrics = await (await admin.GetAsync(monitor?.Spec.Endpoints.Single().Path ?? "/metrics")).Content.ReadAsStringAsync();
        foreach (var hpa in objects.OfType<V2HorizontalPodAutoscaler>())
        {
            Assert.Contains($"# TYPE {hpa.Spec.Metrics.Single().Pods.Metric.Name} gauge", metrics);
            Assert.Equal(deployment.Metadata.Name, hpa.Spec.ScaleTargetRef.Name);
        }

        foreach (var budget in objects.OfType<V1PodDisruptionBudget>())
        {
            Assert.Equal("1", budget.Spec.MinAvailable.Value); // a voluntary eviction leaves one replica serving
            Assert.True(Selects(budget.Spec.Selector.MatchLabels, pod.Metadata.Labels));
        }

        var policy = objects.OfType<V1NetworkPolicy>().Single(p => Selects(p.Spec.PodSelector.MatchLabels, pod.Metadata.Labels));
        Assert.Contains("Egress", policy.Spec.PolicyTypes);
        Assert.Contains(policy.Spec.Egress, rule => rule.Ports.Any(p => p.Port.Value == "53")); // DNS
        Assert.Equal(["8000", "8001"], policy.Spec.Ingress.Single().Ports.Select(p => p.Port.Value));

        var service = objects.OfType<V1Service>().Single(s => Selects(s.Spec.Selector, pod.Metadata.Labels));
        Assert.Equal(["http", "grpc"], service.Spec.Ports.Select(p => p.TargetPort.Value));
        if (monitor is not null)
        {
            Assert.True(Selects(monitor.Spec.Selector.MatchLabels, service.Metadata.Labels), "the ServiceMonitor selects no Service of the pods");
            Assert.Contains(monitor.Spec.Endpoints.Single().Port, service.Spec.Ports.Select(p => p.Name));
        }
    }

    /// <summary>A MEDSERVE_* variable names a real option: each level, read as EnvironmentConfiguration reads it, is a property.</summary>
    public static void AssertIsSetting(string variable)
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

    /// <summary>The Prometheus operator's ServiceMonitor, as much of it as the checks read.</summary>
    public sealed class ServiceMonitor : IKubernetesObject<V1ObjectMeta>
    {
        public string ApiVersion { get; set; } = "";

        public string Kind { get; set; } = "";

        public V1ObjectMeta Metadata { get; set; } = new();

        public ServiceMonitorSpec Spec { get; set; } = new();
    }

    public sealed class ServiceMonitorSpec
    {
        public V1LabelSelector Selector { get; set; } = new();

        public List<ServiceMonitorEndpoint> Endpoints { get; set; } = [];
    }

    public sealed class ServiceMonitorEndpoint
    {
        public string Port { get; set; } = "";

        public string Path { get; set; } = "";
    }
}
