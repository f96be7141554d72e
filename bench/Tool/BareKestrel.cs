using System.Net;

namespace MedServe.Bench;

/// <summary>
/// The HTTP stack's own limit: Kestrel configured as MedServe's is, reading the whole body of
/// POST /v2/models/risk/infer and answering a fixed v2 response of the same size as risk's.
/// </summary>
internal static class BareKestrel
{
    private static readonly byte[] Response =
        """{"model_name":"risk","model_version":"1","outputs":[{"name":"output","datatype":"FP32","shape":[1,1],"data":[0.57409066]}]}"""u8.ToArray();

    public static async Task<int> RunAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Loopback, port);
        });
        var app = builder.Build();
        app.MapPost("/v2/models/risk/infer", async (HttpContext context) =>
        {
            var buffer = new byte[16 * 1024];
            while (await context.Request.Body.ReadAsync(buffer) > 0)
            {
            }

            context.Response.ContentType = "application/json";
            context.Response.ContentLength = Response.Length;
            await context.Response.Body.WriteAsync(Response);
        });
        await app.RunAsync();
        return 0;
    }
}
