using System.Globalization;
using Grpc.Core;
using Grpc.Core.Interceptors;
using MedServe.Grpc;
using MedServe.Grpc.Protocol;
using MedServe.Inference;

namespace MedServe.Security;

/// <summary>
/// The gRPC side of the audit trail: a call's outcome is its gRPC status, known only when the
/// method returns, so the record is written here, before the response message goes out. Also
/// narrows <c>infer:&lt;model&gt;</c> keys to their model, which the HTTP route cannot see.
/// </summary>
public sealed class AuditGrpcInterceptor(AuditTrail trail) : Interceptor
{
    // gRPC metadata keys arrive lower-cased.
    private static readonly string PatientMetadataKey = AuditDetails.PatientHeader.ToLowerInvariant();

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var http = context.GetHttpContext();
        var scope = ScopeAuthorization.RequiredScope(http.GetEndpoint());
        var infer = request as ModelInferRequest;
        if (!trail.Enabled || scope is null || !Scopes.IsAudited(scope))
        {
            RefuseOtherModels(http, infer);
            return await continuation(request, context).ConfigureAwait(false);
        }

        if (trail.Unavailable(out _) is { } reason)
        {
            // Refused before any work, as REST is: a call whose record cannot be written gets no answer.
            if (http.Features.Get<AuditDetails>() is { } unrecorded)
            {
                unrecorded.Recorded = true;
            }

            throw new RpcException(new Status(StatusCode.Unavailable, reason));
        }

        var resource = infer is not null ? Resource(infer.ModelName, infer.ModelVersion) : RequestedModel(request);

        // The same reading as the REST frontend's: an int64 names the patient by its decimal text; a value that cannot be an identifier is refused.
        string? patient = null;
        InferenceException? badPatient = null;
        if (infer is not null)
        {
            try
            {
                patient = InferenceGrpcService.PatientIdOf(infer);
            }
            catch (InferenceException e)
            {
                badPatient = e;
            }
        }

        patient ??= context.RequestHeaders.GetValue(PatientMetadataKey);
        try
        {
            RefuseOtherModels(http, infer);
            if (badPatient is not null)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, badPatient.Message));
            }

            var response = await continuation(request, context).ConfigureAwait(false);
            if (response is ModelInferResponse answered)
            {
                resource = Resource(answered.ModelName, answered.ModelVersion);
            }

            await Record(http, resource, StatusCode.OK, patient).ConfigureAwait(false);
            return response;
        }
        catch (RpcException e)
        {
            await Record(http, resource, e.StatusCode, patient).ConfigureAwait(false);
            throw;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // gRPC answers an unexpected exception with UNKNOWN; the record says so before it leaves.
            await Record(http, resource, StatusCode.Unknown, patient).ConfigureAwait(false);
            throw;
        }
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        AuditedStream(context, () => continuation(requestStream, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        AuditedStream(context, async () =>
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            return true;
        });

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        AuditedStream(context, async () =>
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
            return true;
        });

    /// <summary>
    /// A stream's status is known only when it ends, after its first message may have left: the
    /// record is written then, with that status (UNIMPLEMENTED for the streams MedServe does not
    /// offer), and the response start writes none.
    /// </summary>
    private async Task<T> AuditedStream<T>(ServerCallContext context, Func<Task<T>> call)
    {
        var http = context.GetHttpContext();
        var scope = ScopeAuthorization.RequiredScope(http.GetEndpoint());
        if (!trail.Enabled || scope is null || !Scopes.IsAudited(scope))
        {
            return await call().ConfigureAwait(false);
        }

        if (http.Features.Get<AuditDetails>() is { } details)
        {
            details.Recorded = true;
        }

        var patient = context.RequestHeaders.GetValue(PatientMetadataKey);
        try
        {
            var result = await call().ConfigureAwait(false);
            await Record(http, "", StatusCode.OK, patient).ConfigureAwait(false);
            return result;
        }
        catch (RpcException e)
        {
            await Record(http, "", e.StatusCode, patient).ConfigureAwait(false);
            throw;
        }
        catch (OperationCanceledException)
        {
            // The response start writes no record for a stream: a cancelled one is recorded here.
            await Record(http, "", StatusCode.Cancelled, patient).ConfigureAwait(false);
            throw;
        }
        catch (Exception)
        {
            await Record(http, "", StatusCode.Unknown, patient).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>An <c>infer:&lt;model&gt;</c> key may infer on that model only.</summary>
    private static void RefuseOtherModels(HttpContext http, ModelInferRequest? infer)
    {
        if (infer is not null && !Scopes.Grants(http.User, Scopes.Infer, infer.ModelName))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"the credential lacks the scope 'infer' for model '{infer.ModelName}'"));
        }
    }

    private Task Record(HttpContext http, string resource, StatusCode status, string? patient)
    {
        var details = http.Features.Get<AuditDetails>();
        if (details is not null)
        {
            details.Recorded = true;
        }

        var requestId = http.Response.Headers[AuditMiddleware.RequestIdHeader].ToString();
        var client = http.Connection.RemoteIpAddress?.ToString() ?? "";
        if (status is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
        {
            trail.RecordRefusal(http.User, AuditMiddleware.Action(http), resource, status.ToString(), requestId, client);
            return Task.CompletedTask;
        }

        return trail.RecordAsync(http.User, AuditMiddleware.Action(http), resource, status.ToString(), requestId, client, patient, details);
    }

    private static string Resource(string model, string version) =>
        string.IsNullOrEmpty(version) ? model : string.Create(CultureInfo.InvariantCulture, $"{model}/{version}");

    private static string RequestedModel(object request) => request switch
    {
        RepositoryModelLoadRequest load => load.ModelName,
        RepositoryModelUnloadRequest unload => unload.ModelName,
        _ => "",
    };
}
