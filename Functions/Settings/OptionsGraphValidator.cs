using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Settings;

/// <summary>
/// Validates an options object with its data annotations and everything below it: nested option objects and the values of
/// dictionaries of them (<c>Pools:Tiers:premium</c>), which <c>ValidateDataAnnotations</c> never looks into. Each error names
/// the full configuration key, e.g. <c>Pools:Tiers:premium:ConnectionLimit</c>.
/// </summary>
public sealed class OptionsGraphValidator<TOptions>(string section) : IValidateOptions<TOptions> where TOptions : class
{
    /// <summary>Deeper than any options class here nests; a cycle in an object graph stops there.</summary>
    private const int MaxDepth = 8;

    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        var errors = new List<string>();
        Walk(options, section, errors, 0);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Walk(object value, string path, List<string> errors, int depth)
    {
        if (depth > MaxDepth)
        {
            return;
        }

        var results = new List<ValidationResult>();
        Validator.TryValidateObject(value, new ValidationContext(value), results, validateAllProperties: true);
        foreach (var result in results)
        {
            var members = result.MemberNames.Any() ? result.MemberNames : [""];
            errors.AddRange(members.Select(member => $"{Key(path, member)}: {result.ErrorMessage}"));
        }

        foreach (var property in value.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.GetValue(value) is not { } child)
            {
                continue;
            }

            if (IsOptionsType(property.PropertyType))
            {
                Walk(child, Key(path, property.Name), errors, depth + 1);
            }
            else if (child is IDictionary dictionary && property.PropertyType.GetGenericArguments() is [_, var valueType] && IsOptionsType(valueType))
            {
                foreach (DictionaryEntry entry in dictionary)
                {
                    if (entry.Value is null)
                    {
                        errors.Add($"{Key(Key(path, property.Name), entry.Key.ToString()!)}: must not be empty.");
                        continue;
                    }

                    Walk(entry.Value, Key(Key(path, property.Name), entry.Key.ToString()!), errors, depth + 1);
                }
            }
        }
    }

    /// <summary>The app's own settings classes: walked into. Strings, framework types and collections of values are leaves.</summary>
    private static bool IsOptionsType(Type type) =>
        type.IsClass && type != typeof(string) && type.Namespace?.StartsWith("TenantDb.", StringComparison.Ordinal) == true;

    private static string Key(string path, string member) => member.Length == 0 ? path : $"{path}:{member}";
}
