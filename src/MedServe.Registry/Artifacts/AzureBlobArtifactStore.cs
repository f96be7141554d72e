using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using MedServe.Storage;

namespace MedServe.Registry.Artifacts;

/// <summary>
/// Artifacts in one Azure Blob container, as <c>sha256/&lt;digest&gt;</c>. Errors name the container's
/// address and the service's status, never the connection string, key or signature.
/// </summary>
public sealed class AzureBlobArtifactStore : IArtifactObjectStore
{
    private static readonly StorageTransferOptions Transfer = new() { MaximumConcurrency = 4 };

    private readonly BlobContainerClient _container;

    public AzureBlobArtifactStore(BlobContainerClient container)
    {
        _container = container;
        // Scheme, host and path alone: a SAS connection string puts its signature in the query.
        Name = container.Uri.GetLeftPart(UriPartial.Path);
    }

    public string Name { get; }

    /// <summary>A store for the configured container (its options already passed <see cref="ArtifactsBlobOptions.Problem"/>).</summary>
    public static AzureBlobArtifactStore Create(ArtifactsBlobOptions options)
    {
        try
        {
            // Retries bounded to seconds (the storage defaults wait about 25 s in all), so a replica that cannot
            // reach the store says so promptly at start, and a reconcile waiting on a download is not held long.
            var client = new BlobClientOptions
            {
                Retry = { Mode = Azure.Core.RetryMode.Exponential, MaxRetries = 4, Delay = TimeSpan.FromMilliseconds(500), MaxDelay = TimeSpan.FromSeconds(4) },
            };
            return new AzureBlobArtifactStore(new BlobContainerClient(options.ConnectionString, options.Container, client));
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            // The SDK's message may quote the string it could not parse.
            throw new ArtifactObjectStoreException(
                "Store:ArtifactsBlob:ConnectionString cannot be used by the Azure client: it needs AccountName with the account's whole base64 AccountKey, "
                + "or a SharedAccessSignature, and BlobEndpoint for an endpoint outside Azure (its value is not shown)");
        }
    }

    /// <summary>Creates the container when it is missing (private: no anonymous access), so a fresh deployment needs no manual step.</summary>
    public async Task EnsureContainerAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await _container.CreateIfNotExistsAsync(PublicAccessType.None, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsServiceFailure(e))
        {
            throw Failure("cannot open the artifact container", e);
        }
    }

    public async Task<bool> ExistsAsync(string digest, CancellationToken cancellationToken = default)
    {
        try
        {
            return (await Blob(digest).ExistsAsync(cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (Exception e) when (IsServiceFailure(e))
        {
            throw Failure($"cannot look up artifact sha256:{digest}", e);
        }
    }

    public async Task UploadAsync(string digest, string path, CancellationToken cancellationToken = default)
    {
        var options = new BlobUploadOptions
        {
            // If-None-Match: * — a name is written once; a racing identical upload loses harmlessly.
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/octet-stream" },
            TransferOptions = Transfer,
            // Each request's body is checked by the service, so bytes damaged on the way are refused, not stored.
            TransferValidation = new UploadTransferValidationOptions { ChecksumAlgorithm = StorageChecksumAlgorithm.MD5 },
        };
        try
        {
            await Blob(digest).UploadAsync(path, options, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            // BlobAlreadyExists / ConditionNotMet: the same name, so the same bytes, is there already.
        }
        catch (Exception e) when (IsServiceFailure(e))
        {
            throw Failure($"cannot upload artifact sha256:{digest}", e);
        }
    }

    public async Task<bool> DownloadAsync(string digest, Stream destination, CancellationToken cancellationToken = default)
    {
        try
        {
            await Blob(digest).DownloadToAsync(destination, new BlobDownloadToOptions { TransferOptions = Transfer }, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.BlobNotFound)
        {
            return false;
        }
        catch (Exception e) when (IsServiceFailure(e))
        {
            throw Failure($"cannot download artifact sha256:{digest}", e);
        }
    }

    private BlobClient Blob(string digest) => _container.GetBlobClient("sha256/" + digest);

    private static bool IsServiceFailure(Exception e) => e is RequestFailedException or AggregateException or HttpRequestException;

    /// <summary>
    /// The service's status and error code, or the transport's reason. The SDK's own exception is not
    /// kept as the inner one: its message lists the request, and a log writing it out should not have to be trusted to redact.
    /// </summary>
    private ArtifactObjectStoreException Failure(string what, Exception e)
    {
        var cause = e is AggregateException { InnerExceptions: [var first, ..] } ? first : e;
        var reason = cause switch
        {
            RequestFailedException { Status: > 0 } r => $"HTTP {r.Status} {r.ErrorCode}",
            RequestFailedException r => $"unreachable ({(r.InnerException ?? r).Message})",
            _ => $"unreachable ({cause.Message})",
        };
        return new ArtifactObjectStoreException($"{what} in the object store {Name}: {reason}");
    }
}
