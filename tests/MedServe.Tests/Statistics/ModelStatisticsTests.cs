using MedServe.Statistics;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Statistics;

public sealed class ModelStatisticsTests
{
    private static readonly DateTimeOffset Start = new(2025, 3, 14, 15, 9, 26, 535, TimeSpan.Zero);

    [Fact]
    public void NewStatistics_AreZero()
    {
        var statistics = new ModelStatistics(new FakeTimeProvider(Start));

        Assert.Equal(0, statistics.LastInferenceMs);
        Assert.Equal(0, statistics.InferenceCount);
        Assert.Equal(0, statistics.ExecutionCount);
        Assert.Equal(0, statistics.Success.Count);
        Assert.Empty(statistics.Batches);
    }

    [Fact]
    public void RecordSuccess_SetsLastInferenceFromTheClockAndAddsDurations()
    {
        var clock = new FakeTimeProvider(Start);
        var statistics = new ModelStatistics(clock);

        statistics.RecordSuccess(totalNs: 5_000, queueNs: 1_000);

        Assert.Equal(Start.ToUnixTimeMilliseconds(), statistics.LastInferenceMs);
        Assert.Equal(1741964966535, statistics.LastInferenceMs);
        Assert.Equal(1, statistics.Success.Count);
        Assert.Equal(5_000, statistics.Success.Nanoseconds);
        Assert.Equal(1, statistics.Queue.Count);
        Assert.Equal(1_000, statistics.Queue.Nanoseconds);
        Assert.Equal(0, statistics.Fail.Count);

        clock.Advance(TimeSpan.FromMilliseconds(250));
        statistics.RecordSuccess(totalNs: 7_000, queueNs: 500);

        Assert.Equal(Start.ToUnixTimeMilliseconds() + 250, statistics.LastInferenceMs);
        Assert.Equal(2, statistics.Success.Count);
        Assert.Equal(12_000, statistics.Success.Nanoseconds);
        Assert.Equal(1_500, statistics.Queue.Nanoseconds);
    }

    [Fact]
    public void RecordFailure_CountsFailureAndMovesLastInference()
    {
        var clock = new FakeTimeProvider(Start);
        var statistics = new ModelStatistics(clock);
        statistics.RecordSuccess(100, 10);

        clock.Advance(TimeSpan.FromSeconds(3));
        statistics.RecordFailure(900, MedServe.Inference.InferenceErrorKind.Internal);

        Assert.Equal(Start.ToUnixTimeMilliseconds() + 3_000, statistics.LastInferenceMs);
        Assert.Equal(1, statistics.Fail.Count);
        Assert.Equal(900, statistics.Fail.Nanoseconds);
        Assert.Equal(1, statistics.Success.Count);
        Assert.Equal(1, statistics.Queue.Count);
        Assert.Equal(1, statistics.FailuresBy(FailureReason.Backend));
    }

    [Theory]
    [InlineData(MedServe.Inference.InferenceErrorKind.QueueFull, FailureReason.Rejected)]
    [InlineData(MedServe.Inference.InferenceErrorKind.TimedOut, FailureReason.Rejected)]
    [InlineData(MedServe.Inference.InferenceErrorKind.Cancelled, FailureReason.Canceled)]
    [InlineData(MedServe.Inference.InferenceErrorKind.Internal, FailureReason.Backend)]
    [InlineData(MedServe.Inference.InferenceErrorKind.InvalidArgument, FailureReason.Other)]
    public void RecordFailure_CountsTritonsReason(MedServe.Inference.InferenceErrorKind kind, FailureReason reason)
    {
        var statistics = new ModelStatistics(new FakeTimeProvider(Start));

        statistics.RecordFailure(1, kind);

        Assert.Equal(1, statistics.FailuresBy(reason));
        Assert.Equal(1, Enum.GetValues<FailureReason>().Sum(r => statistics.FailuresBy(r)));
    }

    [Fact]
    public void Histograms_count_latency_and_batch_sizes_into_inclusive_buckets()
    {
        var statistics = new ModelStatistics(new FakeTimeProvider(Start));

        statistics.RecordSuccess(100_000, 0);      // exactly 100 µs: the first bucket
        statistics.RecordSuccess(100_001, 0);      // just above: the second
        statistics.RecordSuccess(20_000_000_000, 0); // 20 s: only +Inf
        statistics.RecordExecution(3, 0, 0, 0);

        var latency = statistics.RequestDuration.CumulativeCounts();
        Assert.Equal(1, latency[0]);
        Assert.Equal(2, latency[1]);
        Assert.Equal(2, latency[^2]);
        Assert.Equal(3, latency[^1]);
        Assert.Equal(20_000_200_001, statistics.RequestDuration.Sum);
        var batches = statistics.BatchSize.CumulativeCounts();
        Assert.Equal([0L, 0L, 1L], batches[..3]);
    }

    [Fact]
    public void RecordExecution_AccumulatesCountsNanosecondsAndBatchStats()
    {
        var statistics = new ModelStatistics(new FakeTimeProvider(Start));

        statistics.RecordExecution(batchSize: 4, inputNs: 10, inferNs: 100, outputNs: 1);
        statistics.RecordExecution(batchSize: 1, inputNs: 20, inferNs: 200, outputNs: 2);
        statistics.RecordExecution(batchSize: 4, inputNs: 30, inferNs: 300, outputNs: 3);

        Assert.Equal(3, statistics.ExecutionCount);
        Assert.Equal(9, statistics.InferenceCount);
        Assert.Equal(3, statistics.ComputeInput.Count);
        Assert.Equal(60, statistics.ComputeInput.Nanoseconds);
        Assert.Equal(600, statistics.ComputeInfer.Nanoseconds);
        Assert.Equal(6, statistics.ComputeOutput.Nanoseconds);
        Assert.Equal(0, statistics.LastInferenceMs);

        var batches = statistics.Batches.ToList();
        Assert.Equal([1L, 4L], batches.Select(b => b.Key));
        var one = batches[0].Value;
        Assert.Equal(1, one.ComputeInput.Count);
        Assert.Equal(20, one.ComputeInput.Nanoseconds);
        Assert.Equal(200, one.ComputeInfer.Nanoseconds);
        Assert.Equal(2, one.ComputeOutput.Nanoseconds);
        var four = batches[1].Value;
        Assert.Equal(2, four.ComputeInfer.Count);
        Assert.Equal(40, four.ComputeInput.Nanoseconds);
        Assert.Equal(400, four.ComputeInfer.Nanoseconds);
        Assert.Equal(4, four.ComputeOutput.Nanoseconds);
    }

    [Fact]
    public async Task RecordExecution_FromManyThreads_LosesNothing()
    {
        var statistics = new ModelStatistics(new FakeTimeProvider(Start));

        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 1_000; i++)
            {
                statistics.RecordExecution(batchSize: 1 + (i % 2), inputNs: 1, inferNs: 2, outputNs: 3);
            }
        })));

        Assert.Equal(8_000, statistics.ExecutionCount);
        Assert.Equal(12_000, statistics.InferenceCount);
        Assert.Equal(16_000, statistics.ComputeInfer.Nanoseconds);
        Assert.Equal([4_000L, 4_000L], statistics.Batches.Select(b => b.Value.ComputeInput.Count));
    }
}
