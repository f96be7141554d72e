using System.Buffers;
using MedServe.Buffers;

namespace MedServe.Http.Codec;

/// <summary>A growable byte buffer from <see cref="BodyBuffers"/>; an <see cref="IBufferWriter{T}"/> for JSON.</summary>
internal sealed class PooledBuffer(int initialSize = 1024) : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer = BodyBuffers.Rent(initialSize);
    private int _length;

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _length);

    public void Advance(int count) => _length += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_length);
    }

    /// <summary>Gives up the array (and its pool duty) to a new owner.</summary>
    public byte[] Detach()
    {
        var array = _buffer;
        _buffer = [];
        return array;
    }

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            BodyBuffers.Return(_buffer);
            _buffer = [];
        }
    }

    private void Ensure(int sizeHint)
    {
        var needed = _length + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }

        var larger = BodyBuffers.Rent(Math.Max(needed, _buffer.Length * 2));
        _buffer.AsSpan(0, _length).CopyTo(larger);
        if (_buffer.Length > 0)
        {
            BodyBuffers.Return(_buffer);
        }

        _buffer = larger;
    }
}
