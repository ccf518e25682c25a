using System.Globalization;
using System.Text.Json;
using Logwell.Server.Hosting;
using Logwell.Core.Query;
using Logwell.Core.Time;
using Logwell.Server.SavedSearches;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Logwell.Server.Api;

/// <summary>
/// <c>/api/v1/saved-searches</c>: list, save (<c>POST {"name", "indexset", "q", "from", "to"}</c>; the query and the
/// times are checked as a search checks them), delete.
/// </summary>
internal static class SavedSearchEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/saved-searches", ListAsync).WithMetadata(Permission.InRequest(Actions.Search));
        routes.MapPost("/api/v1/saved-searches", CreateAsync).WithMetadata(Permission.InRequest(Actions.ManageSavedSearch));
        routes.MapDelete("/api/v1/saved-searches/{id}", DeleteAsync).WithMetadata(Permission.InRequest(Actions.ManageSavedSearch));
    }

    private static async Task ListAsync(HttpContext context)
    {
        var caller = context.Caller();
        // The saved searches of the index sets the caller may search.
        var searches = (await Task.Run(context.RequestServices.GetRequiredService<SavedSearchStore>().List, context.RequestAborted).ConfigureAwait(false))
            .Where(search => caller.Can(Actions.Search, search.IndexSet));
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("saved_searches");
        foreach (var search in searches)
        {
            Write(writer, search);
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static void Write(Utf8JsonWriter writer, SavedSearch search)
    {
        writer.WriteStartObject();
        writer.WriteString("id", search.Id);
        writer.WriteString("name", search.Name);
        writer.WriteString("indexset", search.IndexSet);
        writer.WriteString("q", search.Query);
        writer.WriteString("from", search.From);
        writer.WriteString("to", search.To);
        writer.WriteString("created_at", search.CreatedAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
        writer.WriteEndObject();
    }

    private static async Task CreateAsync(HttpContext context)
    {
        var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 64 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        using var document = body;
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            await ErrorResponses.WriteAsync(context, 400, "expected a JSON object such as {\"name\": \"errors\", \"indexset\": \"default\", \"q\": \"level:error\", \"from\": \"now-1h\"}").ConfigureAwait(false);
            return;
        }
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name is not ("name" or "indexset" or "q" or "from" or "to"))
            {
                await ErrorResponses.WriteAsync(context, 400, $"unknown property '{property.Name}': a saved search has name, indexset, q, from and to").ConfigureAwait(false);
                return;
            }
            if (property.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                await ErrorResponses.WriteAsync(context, 400, $"'{property.Name}' must be a string").ConfigureAwait(false);
                return;
            }
            values[property.Name] = property.Value.GetString();
            if (values[property.Name]?.IndexOf('\0', StringComparison.Ordinal) is >= 0 and var nul)
            {
                // PostgreSQL's text holds no NUL: refused on every metadata store alike.
                await ErrorResponses.WriteAsync(context, 400, $"'{property.Name}' cannot hold the NUL character (position {nul})", nul).ConfigureAwait(false);
                return;
            }
        }
        var name = values.GetValueOrDefault("name")?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > SavedSearchStore.MaxNameLength)
        {
            await ErrorResponses.WriteAsync(context, 400, $"'name' is required: 1 to {SavedSearchStore.MaxNameLength} characters").ConfigureAwait(false);
            return;
        }
        var indexSet = values.GetValueOrDefault("indexset") is { Length: > 0 } set ? set : Logwell.Core.Events.IndexSetName.Default;
        if (!context.Allows(Actions.ManageSavedSearch, indexSet))
        {
            await Access.DenyAsync(context, Actions.ManageSavedSearch, "indexset:" + indexSet).ConfigureAwait(false);
            return;
        }
        var query = values.GetValueOrDefault("q") ?? "";
        if (!PipelineParser.TryParse(query, false, out _, out var queryError))
        {
            await ErrorResponses.WriteAsync(context, 400, $"query error at position {queryError!.Position}: {queryError.Message}", queryError.Position, queryError.Expected).ConfigureAwait(false);
            return;
        }
        foreach (var bound in new[] { "from", "to" })
        {
            if (values.GetValueOrDefault(bound) is { Length: > 0 } text && !TimeExpression.TryParse(text, context.RequestServices.GetTime().GetUtcNow(), out _, out var timeError))
            {
                await ErrorResponses.WriteAsync(context, 400, $"bad '{bound}': {timeError}").ConfigureAwait(false);
                return;
            }
        }
        var store = context.RequestServices.GetRequiredService<SavedSearchStore>();
        var saved = store.Create(name, indexSet, query, NullIfEmpty(values.GetValueOrDefault("from")), NullIfEmpty(values.GetValueOrDefault("to")));
        if (saved is null)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status409Conflict, $"a saved search named '{name}' exists already: delete it first or pick another name").ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status201Created;
        context.Response.Headers.Location = $"/api/v1/saved-searches/{saved.Id}";
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        Write(writer, saved);
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static string? NullIfEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;

    private static async Task DeleteAsync(HttpContext context, string id)
    {
        var store = context.RequestServices.GetRequiredService<SavedSearchStore>();
        var search = store.List().FirstOrDefault(s => s.Id == id);
        if (search is not null && !context.Allows(Actions.ManageSavedSearch, search.IndexSet))
        {
            await Access.DenyAsync(context, Actions.ManageSavedSearch, "indexset:" + search.IndexSet).ConfigureAwait(false);
            return;
        }
        if (search is null || !store.Delete(id))
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status404NotFound, $"no saved search with id '{id}'").ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }
}
