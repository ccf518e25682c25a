using Logwell.Core.Ingest;
using Logwell.Core.Query;
using Logwell.Storage.Engine;

namespace Logwell.Bench.Systems;

/// <summary>Logwell's engine in process: the same decode and append path as the HTTP ingest, without HTTP.</summary>
internal sealed class LogwellEngineSystem : IBenchSystem
{
    private readonly LogEngine _engine;
    private readonly IndexSetStore _store;

    public LogwellEngineSystem(string dataDirectory)
    {
        _engine = LogEngine.Open(new EngineOptions { DataDirectory = dataDirectory, DefaultRetentionDays = 3650 }, TimeProvider.System);
        _store = _engine.GetOrCreateAsync("bench").GetAwaiter().GetResult();
        if (Environment.GetEnvironmentVariable("LOGWELL_BENCH_PATTERNS") == "off")
        {
            _engine.SetPatternsAsync("bench", false).GetAwaiter().GetResult();
        }
    }

    public async Task IngestAsync(Corpus corpus)
    {
        // Decoding the next batch overlaps with the durable append of the previous one, as concurrent clients would.
        Task? pending = null;
        foreach (var (buffer, length, _) in CorpusReader.Batches(corpus.Path, 4 << 20))
        {
            var decoded = EventDecoder.DecodeJsonLines(buffer.AsSpan(0, length), DateTimeOffset.UtcNow);
            if (decoded.Rejected > 0)
            {
                throw new InvalidDataException($"logwell rejected {decoded.Rejected} corpus lines: {decoded.Errors[0].Error}");
            }
            if (pending is not null)
            {
                await pending.ConfigureAwait(false);
            }
            pending = _store.AppendAsync(decoded.Events);
        }
        if (pending is not null)
        {
            await pending.ConfigureAwait(false);
        }
        await _store.FlushAsync().ConfigureAwait(false);
    }

    public Task<long?> QueryAsync(string name, QueryParameters p)
    {
        long? result = name switch
        {
            "needle" => Count(p.Needle),
            "phrase" => Count($"\"{p.PhraseText}\""),
            "and_terms" => Count($"{p.AndTerms[0]} AND {p.AndTerms[1]}"),
            "field_eq" => Count($"level:{p.Level}"),
            "wildcard" => Count($"host:{p.HostPrefix}*"),
            "narrow_time" => Count(p.NarrowTerm, p.NarrowFrom.Ticks, p.NarrowTo.Ticks),
            "count_by" => _store.CountBy(new SearchRequest(MatchAllNode.Instance), "level").Counts.Values.Sum(),
            "histogram" => _store.Histogram(new SearchRequest(MatchAllNode.Instance), p.HistogramSpan.Ticks).Counts.Values.Sum(),
            _ => null,
        };
        return Task.FromResult(result);
    }

    /// <summary>What the search page does: the newest 100 hits and the exact total.</summary>
    private long Count(string query, long? from = null, long? to = null) =>
        _store.Search(new SearchRequest(QueryParser.Parse(query), from, to, null, 100, long.MaxValue)).Total;

    public ValueTask DisposeAsync() => _engine.DisposeAsync();
}
