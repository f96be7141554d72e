using System.CommandLine;
using System.Globalization;
using MedServe.Hosting;

namespace MedServe.Cli;

/// <summary><c>medserve serve</c>: runs the server until Ctrl+C.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var host = new Option<string>("--host") { Description = "Address to listen on (default 127.0.0.1)" };
        var httpPort = new Option<int?>("--http-port") { Description = "HTTP port of the v2 REST API (default 8000)" };
        var grpcPort = new Option<int?>("--grpc-port") { Description = "gRPC port (default 8001)" };
        var dataDir = new Option<string>("--data-dir") { Description = "Folder for everything the server writes (default .medserve)" };
        var repository = new Option<string>("--model-repository") { Description = "Model repository folder (default <data-dir>/models)" };
        var tlsCertificate = new Option<string>("--tls-cert") { Description = "PEM certificate: serve HTTPS and gRPC over TLS (with --tls-key)" };
        var tlsKey = new Option<string>("--tls-key") { Description = "PEM private key of --tls-cert" };
        var noAuth = new Option<bool>("--no-auth") { Description = "Switch authentication off (refused unless listening on loopback)" };

        var command = new Command("serve", "Serve the models of a repository over the Open Inference Protocol") { host, httpPort, grpcPort, dataDir, repository, tlsCertificate, tlsKey, noAuth };
        command.SetAction(async (parse, cancellationToken) =>
        {
            // Only options given on the command line override appsettings.json and MEDSERVE_* variables.
            var overrides = new Dictionary<string, string?>();
            void Set(string key, string? value)
            {
                if (value is not null)
                {
                    overrides[$"{ServerOptions.Section}:{key}"] = value;
                }
            }

            Set(nameof(ServerOptions.Host), parse.GetValue(host));
            Set(nameof(ServerOptions.HttpPort), parse.GetValue(httpPort)?.ToString(CultureInfo.InvariantCulture));
            Set(nameof(ServerOptions.GrpcPort), parse.GetValue(grpcPort)?.ToString(CultureInfo.InvariantCulture));
            Set(nameof(ServerOptions.DataDir), parse.GetValue(dataDir));
            Set(nameof(ServerOptions.ModelRepository), parse.GetValue(repository));
            Set("Tls:CertificatePath", parse.GetValue(tlsCertificate));
            Set("Tls:KeyPath", parse.GetValue(tlsKey));
            Set("Auth:Enabled", parse.GetValue(noAuth) ? "false" : null);

            WebApplication app;
            try
            {
                app = ServerHost.Build(overrides);
            }
            catch (Microsoft.Extensions.Options.OptionsValidationException e)
            {
                // A configuration that cannot start says why and how to fix it, without a stack trace.
                Console.Error.WriteLine($"medserve: {e.Message}");
                return 2;
            }

            await using (app)
            {
                try
                {
                    await app.RunAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (MedServe.Registry.Artifacts.ArtifactObjectStoreException e)
                {
                    // The artifact container could not be opened at start: its address and the reason, never the key.
                    Console.Error.WriteLine($"medserve: {e.Message}");
                    return 2;
                }
            }

            return 0;
        });
        return command;
    }
}
