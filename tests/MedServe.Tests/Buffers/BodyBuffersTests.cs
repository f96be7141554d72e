using MedServe.Buffers;

namespace MedServe.Tests.Buffers;

public sealed class BodyBuffersTests
{
    [Theory]
    [InlineData(0, 16)]
    [InlineData(1000, 1024)]
    [InlineData(1024 * 1024, 1024 * 1024)]
    [InlineData(1024 * 1024 + 1, 2 * 1024 * 1024)]
    [InlineData(60 * 1024 * 1024, 64 * 1024 * 1024)]
    [InlineData(65 * 1024 * 1024, 65 * 1024 * 1024)]
    public void Rent_gives_the_length_CapacityFor_says(int size, int capacity)
    {
        Assert.Equal(capacity, BodyBuffers.CapacityFor(size));
        var array = BodyBuffers.Rent(size);
        Assert.Equal(capacity, array.Length);
        BodyBuffers.Return(array);
    }

    [Fact]
    public void A_burst_of_large_arrays_leaves_at_most_64_MiB_kept()
    {
        var burst = Enumerable.Range(0, 12).Select(_ => BodyBuffers.Rent(16 * 1024 * 1024)).ToList();
        burst.ForEach(BodyBuffers.Return);

        Assert.InRange(BodyBuffers.KeptBytes, 16 * 1024 * 1024, BodyBuffers.KeptLimit);

        // What is kept is reused.
        var again = BodyBuffers.Rent(9 * 1024 * 1024);
        Assert.Contains(burst, kept => ReferenceEquals(kept, again));
        BodyBuffers.Return(again);
    }
}
