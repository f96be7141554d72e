using System.Globalization;
using System.Threading.RateLimiting;
using MedServe.Http.V2;
using MedServe.Storage;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.RateLimiting;

namespace MedServe.Security;

/// <summary>
/// Per-key rate limits (a token bucket per principal: the key's own limit or the server default;
/// in Redis when <c>Redis:ConnectionString</c> is set, so the replicas share it),
/// per-key concurrency (a concurrency limiter per principal, chained before the rate), header
/// limits and request timeouts, each answered with its own status and a JSON error.
/// Kestrel keeps hard limits above these as a backstop.
/// </summary>
public static class RequestLimits
{
    public static IServiceCollection AddRequestLimits(this IServiceCollection services, LimitsOptions limits)
    {
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IServiceProvider>((options, provider) =>
        {
            // With Redis the replicas share each key's bucket; without it each counts alone.
            var redis = provider.GetService<SharedRedis>();
            var time = provider.GetRequiredService<TimeProvider>();
            var rates = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            {
                var rate = RateOf(context, limits);
                if (rate <= 0 || context.User.Identity?.Name is not { } name)
                {
                    return RateLimitPartition.GetNoLimiter("");
                }

                return redis is null
                    ? RateLimitPartition.GetTokenBucketLimiter($"{name}|{rate}", _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = rate,
                        TokensPerPeriod = rate,
                        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                        QueueLimit = 0,
                        AutoReplenishment = true,
                    })
                    : RateLimitPartition.Get($"{name}|{rate}", _ => new SharedTokenBucket(redis, name, rate, time));
            });

            // Requests in flight per key, before the rate: a request refused here spends no token.
            // No limit configured, no second limiter: the rate limiter alone, as before.
            var concurrent = limits.MaxConcurrentRequestsPerKey;
            options.GlobalLimiter = concurrent <= 0 ? rates : PartitionedRateLimiter.CreateChained(
                PartitionedRateLimiter.Create<HttpContext, string>(context => context.User.Identity?.Name is { } name
                    ? RateLimitPartition.GetConcurrencyLimiter(name, _ => new ConcurrencyLimiterOptions { PermitLimit = concurrent, QueueLimit = 0 })
                    : RateLimitPartition.GetNoLimiter("")),
                rates);
            options.OnRejected = (rejected, _) =>
            {
                var response = rejected.HttpContext.Response;
                response.Headers.RetryAfter = "1";

                // A token bucket's refusal says when to retry; a concurrency limiter's does not.
                var message = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan _)
                    ? $"rate limit exceeded: this key may make {RateOf(rejected.HttpContext, limits)} requests per second"
                    : $"concurrency limit exceeded: this key may have {concurrent} requests in flight (MedServe:Limits:MaxConcurrentRequestsPerKey)";
                return new ValueTask(ApiResponses.WriteErrorAsync(response, StatusCodes.Status429TooManyRequests, message));
            };
        });

        services.AddRequestTimeouts(options =>
        {
            options.DefaultPolicy = new RequestTimeoutPolicy
            {
                Timeout = limits.RequestTimeout,
                WriteTimeoutResponse = context => ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status504GatewayTimeout,
                    $"the request did not finish within {limits.RequestTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s (MedServe:Limits:RequestTimeout)"),
            };
        });
        return services;
    }

    /// <summary>Refuses too many or too large headers with 431 and a JSON error (Kestrel's own refusal has no body).</summary>
    public static IApplicationBuilder UseHeaderLimits(this IApplicationBuilder app, LimitsOptions limits) =>
        app.Use((context, next) =>
        {
            var headers = context.Request.Headers;
            if (headers.Count > limits.MaxRequestHeaderCount)
            {
                return ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status431RequestHeaderFieldsTooLarge,
                    $"the request has {headers.Count} headers; at most {limits.MaxRequestHeaderCount} are accepted");
            }

            long bytes = 0;
            foreach (var (name, values) in headers)
            {
                bytes += name.Length;
                foreach (var value in values)
                {
                    bytes += value?.Length ?? 0;
                }
            }

            return bytes > limits.MaxRequestHeadersBytes
                ? ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status431RequestHeaderFieldsTooLarge,
                    $"the request's headers hold {bytes} bytes; at most {limits.MaxRequestHeadersBytes} are accepted")
                : next(context);
        });

    /// <summary>
    /// Runs before authentication: an address that has used up its refusals is answered 429 at
    /// once. Each 401 or 403 it is answered takes a token; a caller with a good credential takes none.
    /// </summary>
    public static IApplicationBuilder UseAddressRefusalLimit(this IApplicationBuilder app, LimitsOptions limits)
    {
        var rate = limits.RefusalsPerSecondPerAddress;
        if (rate <= 0)
        {
            return app;
        }

        var buckets = PartitionedRateLimiter.Create<System.Net.IPAddress, System.Net.IPAddress>(address =>
            RateLimitPartition.GetTokenBucketLimiter(address, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = rate * 5,
                TokensPerPeriod = rate,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
        var message = $"too many refused requests from this address: at most {rate} per second (MedServe:Limits:RefusalsPerSecondPerAddress)";
        return app.Use(async (context, next) =>
        {
            var address = context.Connection.RemoteIpAddress ?? System.Net.IPAddress.None;
            if (buckets.GetStatistics(address)?.CurrentAvailablePermits <= 0)
            {
                context.Response.Headers.RetryAfter = "1";
                await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status429TooManyRequests, message).ConfigureAwait(false);
                return;
            }

            await next(context).ConfigureAwait(false);
            if (context.Response.StatusCode is StatusCodes.Status401Unauthorized or StatusCodes.Status403Forbidden)
            {
                buckets.AttemptAcquire(address).Dispose();
            }
        });
    }

    private static int RateOf(HttpContext context, LimitsOptions limits) =>
        context.User.FindFirst(BearerAuthenticationHandler.RateClaimType)?.Value is { } own
            ? int.Parse(own, CultureInfo.InvariantCulture)
            : limits.RequestsPerSecondPerKey;
}
