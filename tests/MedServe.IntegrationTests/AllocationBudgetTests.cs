using System.Net;
using System.Text;
using MedServe.IntegrationTests.Support;
using Xunit.Abstractions;

namespace MedServe.IntegrationTests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationBudgetCollection
{
    public const string Name = "allocation budget (runs alone)";
}

/// <summary>
/// What one secured, journaled risk request allocates (server and the in-process client together),
/// over a few thousand: a regression on the request path (a per-request allocation in middleware,
/// the bearer handler built per request) fails here instead of only in a benchmark. Runs alone, so
/// no other test's allocations are counted.
/// </summary>
[Collection(AllocationBudgetCollection.Name)]
public sealed class AllocationBudgetTests(ITestOutputHelper output)
{
    private const string RiskBody = """{"id":"a-1","inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0]}]}""";

    /// <summary>Measured at 2026-12-02 (docs/performance.md), with room for noise; lower it when the path gets leaner.</summary>
    private const long BudgetBytesPerRequest = 24 * 1024;

    [Fact]
    public async Task A_secured_journaled_inference_allocates_within_its_budget()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.Client(server.AdminKey);
        var body = Encoding.UTF8.GetBytes(RiskBody);

        async Task Send(int count)
        {
            for (var i = 0; i < count; i++)
            {
                using var content = new ByteArrayContent(body);
                using var response = await client.PostAsync("/v2/models/risk/infer", content);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                await response.Content.CopyToAsync(Stream.Null);
            }
        }

        await Send(500);
        const int measured = 3000;
        var before = GC.GetTotalAllocatedBytes(precise: true);
        await Send(measured);
        var perRequest = (GC.GetTotalAllocatedBytes(precise: true) - before) / measured;

        output.WriteLine($"{perRequest} bytes allocated per request (client and server), budget {BudgetBytesPerRequest}");
        Assert.True(perRequest <= BudgetBytesPerRequest, $"{perRequest} bytes allocated per secured request; the budget is {BudgetBytesPerRequest}");
    }
}
