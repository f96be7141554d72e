using Grpc.Core;
using MedServe.Buffers;
using MedServe.Grpc.Protocol;
using MedServe.Inference;
using MedServe.Lifecycle;
using MedServe.Security;
using MedServe.Statistics;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;

namespace MedServe.Grpc;

/// <summary>
/// <c>inference.GRPCInferenceService</c>, Triton's superset of the Open Inference Protocol's gRPC
/// API. It translates messages and calls the core, as the REST frontend does; the RPCs MedServe
/// does not offer (shared memory, trace, log settings, streaming) answer UNIMPLEMENTED.
/// </summary>
public sealed class InferenceGrpcService(ModelManager models, InFlightBytes budget) : GRPCInferenceService.GRPCInferenceServiceBase
{
    [AllowAnonymous]
    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    [AllowAnonymous]
    public override Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerReadyResponse { Ready = models.IsReady });

    [Authorize(Scopes.ModelsRead)]
    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context) =>
        Guard(() => new ModelReadyResponse { Ready = models.Find(request.Name, request.Version).IsReady });

    [Authorize(Scopes.ModelsRead)]
    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerMetadataResponse
        {
            Name = ServerInfo.Name,
            Version = ServerInfo.Version,
            Extensions = { ServerInfo.Extensions },
        });

    [Authorize(Scopes.ModelsRead)]
    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context) =>
        Guard(() =>
        {
            var target = models.Find(request.Name, request.Version);
            var config = target.Config;
            var response = new ModelMetadataResponse
            {
                Name = request.Name,
                Platform = config.Platform.Length > 0 ? config.Platform : config.Backend,
            };
            var versions = string.IsNullOrEmpty(request.Version)
                ? models.ReadyVersions(request.Name).Select(v => v.Version)
                : [target.Version];
            response.Versions.AddRange(versions.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            foreach (var input in config.Inputs)
            {
                response.Inputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = input.Name, Datatype = Tensors.TensorDataTypes.ToWireName(input.DataType), Shape = { config.WireShape(input) } });
            }

            foreach (var output in config.Outputs)
            {
                response.Outputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = output.Name, Datatype = Tensors.TensorDataTypes.ToWireName(output.DataType), Shape = { config.WireShape(output) } });
            }

            return response;
        });

    [Authorize(Scopes.ModelsRead)]
    public override Task<ModelConfigResponse> ModelConfig(ModelConfigRequest request, ServerCallContext context) =>
        Guard(() => new ModelConfigResponse { Config = GrpcConfigMapper.ToMessage(models.Find(request.Name, request.Version).Config) });

    [Authorize(Scopes.Infer)]
    public override async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        var inference = new InferenceRequest { Budget = budget };
        try
        {
            // grpc-dotnet has read the whole message (up to MaxReceiveMessageSize); its raw
            // contents stay in it for the call, so count them with what decoding adds.
            long raw = 0;
            foreach (var contents in request.RawInputContents)
            {
                raw += contents.Length;
            }

            inference.Count(raw);
            GrpcTensorCodec.Read(request, inference);
            inference.Sink = context.GetHttpContext().Features.Get<AuditDetails>();
            var version = request.ModelVersion.Length > 0 ? request.ModelVersion : null;
            var result = await models.InferAsync(request.ModelName, version, inference, context.CancellationToken).ConfigureAwait(false);

            // Output bytes are sent straight from the result's memory: free it once the call is done.
            var http = context.GetHttpContext();
            http.Response.RegisterForDispose(result);
            http.Response.RegisterForDispose(inference);
            return GrpcTensorCodec.Write(request.ModelName, inference, result);
        }
        catch (InferenceException e)
        {
            inference.Dispose();
            throw ToRpc(e);
        }
        catch
        {
            inference.Dispose();
            throw;
        }
    }

    [Authorize(Scopes.ModelsRead)]
    public override Task<ModelStatisticsResponse> ModelStatistics(ModelStatisticsRequest request, ServerCallContext context) =>
        Guard(() =>
        {
            var versions = models.StatisticsScope(request.Name, request.Version);
            var response = new ModelStatisticsResponse();
            foreach (var version in versions)
            {
                response.ModelStats.Add(ToMessage(version));
            }

            return response;
        });

    [Authorize(Scopes.ModelsRead)]
    public override Task<RepositoryIndexResponse> RepositoryIndex(RepositoryIndexRequest request, ServerCallContext context) =>
        Guard(() =>
        {
            var response = new RepositoryIndexResponse();
            foreach (var entry in models.Index(request.Ready))
            {
                response.Models.Add(new RepositoryIndexResponse.Types.ModelIndex
                {
                    Name = entry.Name,
                    Version = entry.Version?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "",
                    State = entry.State?.ToWireName() ?? "",
                    Reason = entry.Reason ?? "",
                });
            }

            return response;
        });

    [Authorize(Scopes.ModelsWrite)]
    public override async Task<RepositoryModelLoadResponse> RepositoryModelLoad(RepositoryModelLoadRequest request, ServerCallContext context)
    {
        string? config = null;
        foreach (var (key, value) in request.Parameters)
        {
            if (key == "config" && value.ParameterChoiceCase == ModelRepositoryParameter.ParameterChoiceOneofCase.StringParam)
            {
                config = value.StringParam;
            }
            else
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"unexpected load parameter '{key}'"));
            }
        }

        try
        {
            await models.LoadAsync(request.ModelName, config, context.CancellationToken).ConfigureAwait(false);
            return new RepositoryModelLoadResponse();
        }
        catch (InferenceException e)
        {
            throw ToRpc(e);
        }
    }

    [Authorize(Scopes.ModelsWrite)]
    public override async Task<RepositoryModelUnloadResponse> RepositoryModelUnload(RepositoryModelUnloadRequest request, ServerCallContext context)
    {
        try
        {
            await models.UnloadAsync(request.ModelName, context.CancellationToken).ConfigureAwait(false);
            return new RepositoryModelUnloadResponse();
        }
        catch (InferenceException e)
        {
            throw ToRpc(e);
        }
    }

    /// <summary>The patient a ModelInfer request's parameters name, read as the REST frontend reads it (<see cref="AuditDetails.PatientIdOf"/>).</summary>
    public static string? PatientIdOf(ModelInferRequest request) =>
        request.Parameters.TryGetValue(AuditDetails.PatientParameter, out var value)
            ? AuditDetails.PatientIdOf(GrpcTensorCodec.ReadParameter(AuditDetails.PatientParameter, value))
            : null;

    internal static RpcException ToRpc(InferenceException error) => new(new Status(error.Kind switch
    {
        InferenceErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        InferenceErrorKind.NotFound => StatusCode.NotFound,
        InferenceErrorKind.Unavailable or InferenceErrorKind.QueueFull => StatusCode.Unavailable,
        InferenceErrorKind.TooLarge => StatusCode.ResourceExhausted,
        InferenceErrorKind.TimedOut => StatusCode.DeadlineExceeded,
        InferenceErrorKind.Cancelled => StatusCode.Cancelled,
        _ => StatusCode.Internal,
    }, error.Message));

    private static Task<T> Guard<T>(Func<T> action)
    {
        try
        {
            return Task.FromResult(action());
        }
        catch (InferenceException e)
        {
            throw ToRpc(e);
        }
    }

    private static Protocol.ModelStatistics ToMessage(ModelVersion version)
    {
        var stats = version.Statistics;
        var message = new Protocol.ModelStatistics
        {
            Name = version.Name,
            Version = version.Version.ToString(System.Globalization.CultureInfo.InvariantCulture),
            LastInference = (ulong)stats.LastInferenceMs,
            InferenceCount = (ulong)stats.InferenceCount,
            ExecutionCount = (ulong)stats.ExecutionCount,
            InferenceStats = new InferStatistics
            {
                Success = Duration(stats.Success),
                Fail = Duration(stats.Fail),
                Queue = Duration(stats.Queue),
                ComputeInput = Duration(stats.ComputeInput),
                ComputeInfer = Duration(stats.ComputeInfer),
                ComputeOutput = Duration(stats.ComputeOutput),
                CacheHit = new StatisticDuration(),
                CacheMiss = new StatisticDuration(),
            },
        };
        foreach (var (size, batch) in stats.Batches)
        {
            message.BatchStats.Add(new InferBatchStatistics
            {
                BatchSize = (ulong)size,
                ComputeInput = Duration(batch.ComputeInput),
                ComputeInfer = Duration(batch.ComputeInfer),
                ComputeOutput = Duration(batch.ComputeOutput),
            });
        }

        return message;
    }

    private static StatisticDuration Duration(DurationStat stat) => new() { Count = (ulong)stat.Count, Ns = (ulong)stat.Nanoseconds };
}
