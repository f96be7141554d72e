using k8s.Models;
using MedServe.IntegrationTests.Support;
using MedServe.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>
/// The Helm chart in deploy/helm/medserve, rendered by the real helm binary: linted strictly, its
/// renders loaded as typed objects and held to the same checks as the plain manifests (against a
/// really running server), its PostgreSQL and Redis wired through Secrets, and the settings that
/// cannot work (several replicas on SQLite, values against the schema) refused at render time.
/// </summary>
public sealed class HelmChartTests
{
    private static readonly string Chart = Path.Combine(RepositoryRoot.Path, "deploy", "helm", "medserve");

    private static readonly string MultiReplicaValues = Path.Combine(RepositoryRoot.Path, "tests", "MedServe.IntegrationTests", "HelmValues", "multi-replica.yaml");

    [HelmFact]
    public async Task Helm_lint_strict_passes_with_the_defaults_and_with_several_replicas()
    {
        foreach (var arguments in new[] { new[] { "lint", "--strict", Chart }, ["lint", "--strict", Chart, "--values", MultiReplicaValues] })
        {
            var lint = await Helm.RunAsync(arguments);
            Assert.True(lint.ExitCode == 0, lint.Output + lint.Error);
            Assert.Contains("0 chart(s) failed", lint.Output);
        }
    }

    [HelmFact]
    public async Task The_default_render_configures_a_real_server_from_its_own_secrets_and_names_real_routes_ports_settings_and_metrics()
    {
        var objects = KubernetesManifestChecks.Load(await TemplateAsync());
        var deployment = KubernetesManifestChecks.Server(objects);
        var container = deployment.Spec.Template.Spec.Containers.Single();
        Assert.Equal(1, deployment.Spec.Replicas);
        Assert.Equal("Recreate", deployment.Spec.Strategy.Type); // one process owns a data dir
        Assert.Equal("sqlite", container.Env.Single(e => e.Name == "MEDSERVE_STORE__PROVIDER").Value);
        // SQLite's state (registry, keys) must outlive the pod.
        var data = deployment.Spec.Template.Spec.Volumes.Single(v => v.Name == "data");
        Assert.Contains(objects.OfType<V1PersistentVolumeClaim>(), c => c.Metadata.Name == data.PersistentVolumeClaim?.ClaimName);
        Assert.Empty(objects.OfType<V2HorizontalPodAutoscaler>());
        Assert.Empty(objects.OfType<V1PodDisruptionBudget>()); // with one replica it would block every node drain
        Assert.Empty(objects.OfType<KubernetesManifestChecks.ServiceMonitor>());
        Assert.Empty(objects.OfType<V1StatefulSet>());
        Assert.DoesNotContain(container.Env, e => e.Name.Contains("ARTIFACTSBLOB", StringComparison.Ordinal));

        // The generated ring, signing key and certificate are ones the server accepts and uses.
        await using var pod = await RenderedPod.StartAsync(objects);
        Assert.Equal("https", pod.Server.HttpAddress.Scheme);
        pod.Server.Services.GetRequiredService<MedServe.Compliance.Encryption.EnvelopeEncryption>();
        Assert.False(File.Exists(Path.Combine(pod.DataDir, "secrets", "master.keys")), "the server made its own master key ring");
        Assert.False(File.Exists(Path.Combine(pod.DataDir, "secrets", "audit-signing.pem")), "the server made its own signing key");
        Assert.False(File.Exists(Path.Combine(pod.DataDir, "admin.key")), "the server made its own admin key");
        Assert.Matches("^ms_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$", pod.AdminKey);
        await KubernetesManifestChecks.AssertMatchServerAsync(objects, pod.Client, pod.AdminKey);
    }

    [HelmFact]
    public async Task The_multi_replica_render_names_real_routes_ports_settings_and_metrics()
    {
        var objects = KubernetesManifestChecks.Load(await TemplateAsync("--values", MultiReplicaValues));
        var autoscaled = KubernetesManifestChecks.Load(await TemplateAsync("--values", MultiReplicaValues, "--set", "autoscaling.enabled=true"));
        await using (var server = await RunningServer.StartAsync(new Dictionary<string, string?>()))
        {
            await KubernetesManifestChecks.AssertMatchServerAsync(objects, server.Client, server.AdminKey);
            await KubernetesManifestChecks.AssertMatchServerAsync(autoscaled, server.Client, server.AdminKey);
        }

        var deployment = KubernetesManifestChecks.Server(objects);
        Assert.Equal(3, deployment.Spec.Replicas);
        Assert.Equal("RollingUpdate", deployment.Spec.Strategy.Type);
        Assert.Single(objects.OfType<V1PodDisruptionBudget>());
        Assert.Single(objects.OfType<KubernetesManifestChecks.ServiceMonitor>());
        Assert.Null(KubernetesManifestChecks.Server(autoscaled).Spec.Replicas); // the autoscaler owns the count
        Assert.Equal(2, autoscaled.OfType<V2HorizontalPodAutoscaler>().Single().Spec.MinReplicas);

        // The replicas share their artifacts on one ReadWriteMany volume.
        var pod = deployment.Spec.Template.Spec;
        var artifacts = pod.Containers.Single().Env.Single(e => e.Name == "MEDSERVE_STORE__ARTIFACTSPATH").Value;
        var volume = pod.Volumes.Single(v => v.Name == pod.Containers.Single().VolumeMounts.Single(m => m.MountPath == artifacts).Name);
        Assert.Contains("ReadWriteMany", objects.OfType<V1PersistentVolumeClaim>().Single(c => c.Metadata.Name == volume.PersistentVolumeClaim.ClaimName).Spec.AccessModes);
    }

    [HelmFact]
    public async Task The_multi_replica_render_wires_postgres_and_redis_through_secrets_only()
    {
        var objects = KubernetesManifestChecks.Load(await TemplateAsync("--values", MultiReplicaValues));
        var container = KubernetesManifestChecks.Server(objects).Spec.Template.Spec.Containers.Single();
        var (postgres, redis) = InChartServers(objects);

        var database = new Npgsql.NpgsqlConnectionStringBuilder(SecretValue(objects, container, "MEDSERVE_STORE__CONNECTIONSTRING"));
        Assert.Equal("postgres", container.Env.Single(e => e.Name == "MEDSERVE_STORE__PROVIDER").Value);
        Assert.Null(new StoreOptions { Provider = StoreProvider.Postgres, ConnectionString = database.ConnectionString }.Problem());
        Assert.Equal(ServiceOf(objects, postgres, database.Port).Metadata.Name, database.Host);
        var postgresContainer = postgres.Spec.Template.Spec.Containers.Single();
        Assert.Equal(SecretValue(objects, postgresContainer, "POSTGRES_PASSWORD"), database.Password);
        Assert.Equal(postgresContainer.Env.Single(e => e.Name == "POSTGRES_DB").Value, database.Database);
        Assert.Equal(postgresContainer.Env.Single(e => e.Name == "POSTGRES_USER").Value, database.Username);

        var redisConnection = SecretValue(objects, container, "MEDSERVE_REDIS__CONNECTIONSTRING");
        Assert.Null(new RedisOptions { ConnectionString = redisConnection }.Problem());
        var redisOptions = StackExchange.Redis.ConfigurationOptions.Parse(redisConnection);
        var endpoint = Assert.IsType<System.Net.DnsEndPoint>(redisOptions.EndPoints.Single());
        Assert.Equal(ServiceOf(objects, redis, endpoint.Port).Metadata.Name, endpoint.Host);
        // redis-server reads its password from the same Secret, as a config file named on its command line.
        var configVolume = redis.Spec.Template.Spec.Volumes.Single(v => v.Secret is not null);
        var configFile = configVolume.Secret.Items.Single();
        var redisContainer = redis.Spec.Template.Spec.Containers.Single();
        Assert.Contains($"{redisContainer.VolumeMounts.Single(m => m.Name == configVolume.Name).MountPath}/{configFile.Path}", redisContainer.Args);
        Assert.Equal($"requirepass {redisOptions.Password}\n", Secret(objects, configVolume.Secret.SecretName).StringData[configFile.Key]);

        foreach (var other in Workloads(objects).SelectMany(w => w.Template.Spec.Containers))
        {
            // No password in any pod spec: a plain value never holds one.
            Assert.DoesNotContain(other.Env ?? [], e => e.Value is not null && e.Value.Contains("password", StringComparison.OrdinalIgnoreCase));
        }
    }

    [HelmFact]
    public async Task The_in_chart_postgres_and_redis_keep_their_data_and_answer_the_server_alone()
    {
        var objects = KubernetesManifestChecks.Load(await TemplateAsync("--values", MultiReplicaValues));
        var server = KubernetesManifestChecks.Server(objects).Spec.Template;
        var workloads = Workloads(objects);
        foreach (var (selector, _) in workloads)
        {
            // The pods share name and instance labels: no workload may adopt another's pods.
            Assert.Single(workloads, other => KubernetesManifestChecks.Selects(selector.MatchLabels, other.Template.Metadata.Labels));
        }

        foreach (var service in objects.OfType<V1Service>())
        {
            Assert.Single(workloads, w => KubernetesManifestChecks.Selects(service.Spec.Selector, w.Template.Metadata.Labels));
        }

        var (postgres, redis) = InChartServers(objects);
        foreach (var set in new[] { postgres, redis })
        {
            var pod = set.Spec.Template;
            var container = pod.Spec.Containers.Single();
            Assert.Contains(container.VolumeMounts, m => m.Name == set.Spec.VolumeClaimTemplates.Single().Metadata.Name);
            Assert.True(pod.Spec.SecurityContext.RunAsNonRoot);
            Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);

            var port = container.Ports.Single().ContainerPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var egress = objects.OfType<V1NetworkPolicy>().Single(p => KubernetesManifestChecks.Selects(p.Spec.PodSelector.MatchLabels, server.Metadata.Labels)).Spec.Egress;
            Assert.Contains(egress, rule => rule.Ports.Any(p => p.Port.Value == port) && rule.To.Any(peer => KubernetesManifestChecks.Selects(peer.PodSelector.MatchLabels, pod.Metadata.Labels)));
            var ingress = objects.OfType<V1NetworkPolicy>().Single(p => KubernetesManifestChecks.Selects(p.Spec.PodSelector.MatchLabels, pod.Metadata.Labels)).Spec.Ingress.Single();
            Assert.True(KubernetesManifestChecks.Selects(ingress.FromProperty.Single().PodSelector.MatchLabels, server.Metadata.Labels));
            Assert.Equal(port, ingress.Ports.Single().Port.Value);
        }
    }

    [HelmFact]
    public async Task Several_replicas_on_sqlite_fail_the_render_with_the_reason()
    {
        foreach (var setting in new[] { "replicaCount=2", "autoscaling.enabled=true" })
        {
            var render = await Helm.RunAsync("template", "medserve", Chart, "--set", setting);
            Assert.NotEqual(0, render.ExitCode);
            Assert.Contains("store.provider is sqlite", render.Error);
            Assert.Contains("replicas would not share API keys, the registry or experiments", render.Error);
            Assert.Empty(render.Output);
        }
    }

    [HelmFact]
    public async Task Redis_notifications_need_a_redis_and_are_passed_to_the_server()
    {
        var render = await Helm.RunAsync("template", "medserve", Chart, "--set", "store.provider=postgres", "--set", "postgresql.enabled=true", "--set", "store.notifications=redis");
        Assert.NotEqual(0, render.ExitCode);
        Assert.Contains("store.notifications is redis but no Redis is given", render.Error);

        var objects = KubernetesManifestChecks.Load(await TemplateAsync("-f", MultiReplicaValues));
        var env = KubernetesManifestChecks.Server(objects).Spec.Template.Spec.Containers.Single().Env;
        Assert.Equal("redis", env.Single(e => e.Name == "MEDSERVE_STORE__NOTIFICATIONS").Value);
    }

    [HelmFact]
    public async Task Values_against_the_schema_fail_the_render()
    {
        foreach (var (setting, path) in new[] { ("replicaCount=two", "/replicaCount"), ("store.provider=mysql", "/store/provider"), ("replicas=3", "replicas") })
        {
            var render = await Helm.RunAsync("template", "medserve", Chart, "--set", setting);
            Assert.NotEqual(0, render.ExitCode);
            Assert.Contains("values don't meet the specifications of the schema", render.Error);
            Assert.Contains(path, render.Error);
        }
    }

    [HelmFact]
    public async Task The_blob_artifact_store_renders_only_when_enabled_from_a_secret()
    {
        var objects = KubernetesManifestChecks.Load(await TemplateAsync("--set", "artifacts.blob.enabled=true", "--set", "artifacts.blob.connectionStringSecret.name=blob-account"));
        var env = KubernetesManifestChecks.Server(objects).Spec.Template.Spec.Containers.Single().Env;
        var connection = env.Single(e => e.Name == "MEDSERVE_STORE__ARTIFACTSBLOB__CONNECTIONSTRING");
        Assert.Null(connection.Value);
        Assert.Equal("blob-account", connection.ValueFrom.SecretKeyRef.Name);
        Assert.Equal("medserve-artifacts", env.Single(e => e.Name == "MEDSERVE_STORE__ARTIFACTSBLOB__CONTAINER").Value);

        var missing = await Helm.RunAsync("template", "medserve", Chart, "--set", "artifacts.blob.enabled=true");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("artifacts.blob.connectionStringSecret.name", missing.Error);
    }

    private static async Task<string> TemplateAsync(params string[] arguments)
    {
        var render = await Helm.RunAsync(["template", "medserve", Chart, "--namespace", "clinical", .. arguments]);
        Assert.True(render.ExitCode == 0, render.Error);
        return render.Output;
    }

    private static V1Secret Secret(IList<object> objects, string name) => objects.OfType<V1Secret>().Single(s => s.Metadata.Name == name);

    /// <summary>A variable's value, which must come from a rendered Secret and never be written in the pod spec.</summary>
    private static string SecretValue(IList<object> objects, V1Container container, string name)
    {
        var variable = container.Env.Single(e => e.Name == name);
        Assert.Null(variable.Value);
        var reference = variable.ValueFrom.SecretKeyRef;
        return Secret(objects, reference.Name).StringData[reference.Key];
    }

    private static (V1StatefulSet Postgres, V1StatefulSet Redis) InChartServers(IList<object> objects) =>
        (objects.OfType<V1StatefulSet>().Single(s => s.Spec.Template.Spec.Containers.Single().Image == "postgres:15"),
         objects.OfType<V1StatefulSet>().Single(s => s.Spec.Template.Spec.Containers.Single().Image == "redis:7"));

    private static List<(V1LabelSelector Selector, V1PodTemplateSpec Template)> Workloads(IList<object> objects) =>
        objects.OfType<V1Deployment>().Select(d => (d.Spec.Selector, d.Spec.Template))
            .Concat(objects.OfType<V1StatefulSet>().Select(s => (s.Spec.Selector, s.Spec.Template))).ToList();

    /// <summary>The Service that reaches the workload's pods on the port.</summary>
    private static V1Service ServiceOf(IList<object> objects, V1StatefulSet set, int port) =>
        objects.OfType<V1Service>().Single(s => KubernetesManifestChecks.Selects(s.Spec.Selector, set.Spec.Template.Metadata.Labels) && s.Spec.Ports.Any(p => p.Port == port));
}
