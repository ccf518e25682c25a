using System.Diagnostics.CodeAnalysis;
using Logwell.Core.Cleaning;
using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Core.Query;
using Logwell.Storage.Engine;
using Logwell.Storage.Querying;

namespace Logwell.Storage;

/// <summary>
/// The log store: every endpoint, task and page reads and writes events through it, never through an engine directly.
/// Two implementations: the embedded engine (<see cref="LogEngine"/>, the single-node default) and ClickHouse (cluster
/// mode). An index set named <c>default</c> always exists.
/// </summary>
/// <remarks>
/// Reads may do their work before the returned task completes (the embedded engine answers on the calling thread), so
/// a caller that must not block runs them off its thread. Failures to store are <see cref="IOException"/>s: no event
/// of the batch is acknowledged, and retrying is safe.
/// </remarks>
public interface ILogStore : IAsyncDisposable
{
    /// <summary>Index sets that exist but cannot serve, with the reason; the others serve.</summary>
    IReadOnlyDictionary<string, string> Unavailable { get; }

    /// <summary>Damaged data found in index sets that serve (each: index set, segment, what failed its checksum).</summary>
    IReadOnlyList<string> Damage => [];

    /// <summary>
    /// Why the store cannot be reached now (its server does not answer), or null when it can. Nothing is acknowledged
    /// meanwhile: appends fail, and the node is not ready.
    /// </summary>
    string? Unreachable { get; }

    bool TryGet(string name, [NotNullWhen(true)] out ILogIndexSet? indexSet);

    /// <summary>The names of the index sets that serve, in order, without reading their figures.</summary>
    IReadOnlyList<string> Names();

    /// <summary>Every index set that serves, with its figures, by name.</summary>
    Task<IReadOnlyList<IndexSetInfo>> ListAsync(CancellationToken cancellationToken = default);

    /// <param name="system">A system index set of the node's own (<c>_audit</c>), whose name no client may use.</param>
    Task<(CreateOutcome Outcome, string Error, ILogIndexSet? IndexSet)> CreateAsync(string name, int? retentionDays, bool system = false);

    /// <summary>The index set, created with the default settings when it does not exist (ingest that auto-creates).</summary>
    Task<ILogIndexSet> GetOrCreateAsync(string name);

    /// <summary>Deletes an index set and its events; false when there is none by that name.</summary>
    Task<bool> DeleteAsync(string name);

    /// <summary>
    /// Changes how long an index set keeps its events; the next retention pass applies it. Not found when the index set
    /// does not exist; an error when the number is out of range.
    /// </summary>
    Task<(bool Found, string? Error, IndexSetInfo? Info)> SetRetentionAsync(string name, int retentionDays);

    /// <summary>Drops what every index set holds past its retention.</summary>
    Task ApplyRetentionAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Saves durably and applies an index set's <c>patterns</c> setting (pattern ids at ingest); false when there is no
    /// index set by that name.
    /// </summary>
    Task<bool> SetPatternsAsync(string name, bool on);

    /// <summary>Starts a merge pass on every index set (the store merges by itself too).</summary>
    void RequestMerges();
}

/// <summary>One index set of a <see cref="ILogStore"/>: its events, its cleaning pipeline and its live tail.</summary>
public interface ILogIndexSet
{
    string Name { get; }

    /// <summary>
    /// Whether the index set cannot keep up with what is appended: ingest should refuse new work (429) instead of
    /// holding it in memory.
    /// </summary>
    bool IsBackedUp { get; }

    /// <summary>The cleaning pipeline every appended event goes through; null for none.</summary>
    CleaningPipeline? Pipeline { get; }

    /// <summary>Saves durably and starts using a cleaning pipeline; null removes it.</summary>
    Task SetPipelineAsync(CleaningPipeline? pipeline, CancellationToken cancellationToken = default);

    /// <summary>
    /// What gives every appended event the id of its template (the field <c>pattern</c>), after the cleaning pipeline;
    /// null when the index set's <c>patterns</c> setting is off.
    /// </summary>
    PatternTagger? Patterns { get; }

    /// <summary>How many days the index set keeps its events.</summary>
    int RetentionDays { get; }

    /// <summary>
    /// Makes <paramref name="events"/> durable: the task completes once they are stored and searchable, and only then
    /// may they be acknowledged. With a cleaning pipeline, each event in the list is replaced by its cleaned form first.
    /// Throws <see cref="ObjectDisposedException"/> when the index set was deleted, <see cref="IOException"/> when the
    /// events could not be made durable; either way none of them was stored.
    /// </summary>
    Task AppendAsync(List<LogEvent> events, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="AppendAsync"/> for a request a client may send again after losing the answer (the
    /// <c>Idempotency-Key</c> header): the events of one key are written as a unit that the store recognises when it
    /// comes again and stores once. On ClickHouse with replicated tables the unit is one block with event ids drawn
    /// from the key, which the table deduplicates (within its last 1,000 blocks); events must carry their own times for
    /// the second copy to be the same. The embedded engine stores them as <see cref="AppendAsync"/> does: it answers
    /// every batch once fsynced, so a retry follows only a crash of the node itself.
    /// </summary>
    Task AppendOnceAsync(List<LogEvent> events, string key, CancellationToken cancellationToken = default);

    /// <summary>
    /// Follows the events as they are acknowledged. A subscriber that lets more than <paramref name="capacity"/>
    /// batches wait is cut off.
    /// </summary>
    TailSubscription Tail(int capacity = 256);

    Task<IndexSetInfo> InfoAsync(CancellationToken cancellationToken = default);

    /// <summary>The earliest and latest event times held (UTC ticks), or null when the index set is empty.</summary>
    Task<(long Min, long Max)?> TimeBoundsAsync(CancellationToken cancellationToken = default);

    /// <summary>The event with sequence number <paramref name="seq"/> (its id), or null when it is not (or no longer) here.</summary>
    Task<LogEvent?> FindBySeqAsync(long seq, CancellationToken cancellationToken = default);

    /// <summary>One page of the matching events, newest first unless the request orders otherwise.</summary>
    Task<SearchResult> SearchAsync(SearchRequest request, CancellationToken cancellationToken = default);

    /// <summary>Matching events counted per time bucket of <paramref name="bucketTicks"/>.</summary>
    Task<HistogramResult> HistogramAsync(SearchRequest request, long bucketTicks, CancellationToken cancellationToken = default);

    /// <summary>The table a query's pipe stages make over the matching events between the two times.</summary>
    Task<ResultTable> RunPipelineAsync(Pipeline pipeline, long? from, long? to, CancellationToken cancellationToken = default);
}
