using System.Threading.Channels;
using MedServe.Backends;

namespace MedServe.Scheduling;

/// <summary>The free execution instances of a model version; a request (or a batch) takes one to run.</summary>
internal sealed class InstancePool : IDisposable
{
    private readonly IModelInstance[] _instances;
    private readonly Channel<IModelInstance> _free;

    public InstancePool(IModelInstance[] instances)
    {
        _instances = instances;
        _free = Channel.CreateBounded<IModelInstance>(Math.Max(instances.Length, 1));
        foreach (var instance in instances)
        {
            _free.Writer.TryWrite(instance);
        }
    }

    public int Count => _instances.Length;

    public ValueTask<IModelInstance> TakeAsync(CancellationToken cancellationToken) =>
        _free.Reader.TryRead(out var instance) ? ValueTask.FromResult(instance) : _free.Reader.ReadAsync(cancellationToken);

    public bool TryTake(out IModelInstance instance) => _free.Reader.TryRead(out instance!);

    public void Return(IModelInstance instance) => _free.Writer.TryWrite(instance);

    public void Dispose()
    {
        foreach (var instance in _instances)
        {
            instance.Dispose();
        }
    }
}
