using DurableTask.Core;

namespace TenantDb.LocalHost.Durable;

/// <summary>Name-to-factory registry for the engine (its own NameVersionObjectManager is internal); names match case-insensitively.</summary>
internal sealed class ObjectManager<T> : INameVersionObjectManager<T>
{
    private readonly Dictionary<string, ObjectCreator<T>> _creators = new(StringComparer.OrdinalIgnoreCase);

    public int Count => _creators.Count;

    public void Add(ObjectCreator<T> creator) => _creators.Add(creator.Name, creator);

    public T? GetObject(string name, string? version) => _creators.TryGetValue(name, out var creator) ? creator.Create() : default;
}

/// <summary>Creates a fresh engine object per work item.</summary>
internal sealed class FactoryCreator<T> : ObjectCreator<T>
{
    private readonly Func<T> _create;

    public FactoryCreator(string name, Func<T> create)
    {
        Name = name;
        Version = string.Empty;
        _create = create;
    }

    public override T Create() => _create();
}
