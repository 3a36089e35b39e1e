using DurableTask.Core;

namespace TenantDb.LocalHost.Durable;

/// <summary>Name-to-factory registry for the engine (its own NameVersionObjectManager is internal); names match case-insensitively.</summary>
internal sealed class ObjectManager<T> : INameVersionObjectManager<T>
{
    private readonly Dictionary<string, ObjectCreator<T>> creators = new(StringComparer.OrdinalIgnoreCase);

    public int Count => this.creators.Count;

    public void Add(ObjectCreator<T> creator) => this.creators.Add(creator.Name, creator);

    public T? GetObject(string name, string? version) => this.creators.TryGetValue(name, out ObjectCreator<T>? creator) ? creator.Create() : default;
}

/// <summary>Creates a fresh engine object per work item.</summary>
internal sealed class FactoryCreator<T> : ObjectCreator<T>
{
    private readonly Func<T> create;

    public FactoryCreator(string name, Func<T> create)
    {
        this.Name = name;
        this.Version = string.Empty;
        this.create = create;
    }

    public override T Create() => this.create();
}
