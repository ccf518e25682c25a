using System.Globalization;
using System.Text;
using System.Text.Json;
using Lucene.Net.Analysis.Util;
using Lucene.Net.Analysis.Standard;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Store;
using Lucene.Net.Util;
using LuceneDirectory = Lucene.Net.Store.Directory;

namespace Logwell.Bench.Systems;

/// <summary>
/// Lucene.NET 4.8: the message as analysed text (standard tokenizer, no stop words), host/level/service/trace_id as
/// keywords, the time as a numeric field with doc values, and the whole line stored as <c>_source</c> so hits can be
/// shown, as Elasticsearch does. One commit at the end (its durability point).
/// </summary>
internal sealed class LuceneSystem : IBenchSystem
{
    private const LuceneVersion Version = LuceneVersion.LUCENE_48;
    private readonly LuceneDirectory _directory;
    private DirectoryReader? _reader;
    private IndexSearcher? _searcher;

    public LuceneSystem(string dataDirectory)
    {
        System.IO.Directory.CreateDirectory(dataDirectory);
        _directory = FSDirectory.Open(dataDirectory);
    }

    private static StandardAnalyzer Analyzer() => new(Version, CharArraySet.Empty);

    public Task IngestAsync(Corpus corpus)
    {
        var config = new IndexWriterConfig(Version, Analyzer()) { OpenMode = OpenMode.CREATE, RAMBufferSizeMB = 128 };
        using var writer = new IndexWriter(_directory, config);
        var message = new TextField("message", "", Field.Store.NO);
        var host = new StringField("host", "", Field.Store.NO);
        var level = new StringField("level", "", Field.Store.NO);
        var levelValues = new SortedDocValuesField("level", new BytesRef());
        var service = new StringField("service", "", Field.Store.NO);
        var trace = new StringField("trace_id", "", Field.Store.NO);
        var time = new Int64Field("t", 0, Field.Store.NO);
        var timeValues = new NumericDocValuesField("t", 0);
        var source = new StoredField("_source", "");
        var doc = new Document { message, host, level, levelValues, service, trace, time, timeValues, source };
        foreach (var line in CorpusReader.Lines(corpus.Path))
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            message.SetStringValue(root.GetProperty("message").GetString());
            host.SetStringValue(root.GetProperty("host").GetString());
            var levelText = root.GetProperty("level").GetString()!;
            level.SetStringValue(levelText);
            levelValues.SetBytesValue(new BytesRef(Encoding.UTF8.GetBytes(levelText)));
            service.SetStringValue(root.GetProperty("service").GetString());
            trace.SetStringValue(root.GetProperty("trace_id").GetString());
            var t = DateTimeOffset.Parse(root.GetProperty("t").GetString()!, CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();
            time.SetInt64Value(t);
            timeValues.SetInt64Value(t);
            source.SetStringValue(line);
            writer.AddDocument(doc);
        }
        writer.Commit();
        return Task.CompletedTask;
    }

    private IndexSearcher Searcher()
    {
        if (_searcher is null)
        {
            _reader = DirectoryReader.Open(_directory);
            _searcher = new IndexSearcher(_reader);
        }
        return _searcher;
    }

    public Task<long?> QueryAsync(string name, QueryParameters p)
    {
        var searcher = Searcher();
        long? result = name switch
        {
            "needle" => Count(searcher, new TermQuery(new Term("trace_id", p.Needle))),
            "phrase" => Count(searcher, Phrase(p.Phrase)),
            "and_terms" => Count(searcher, new BooleanQuery
            {
                { new TermQuery(new Term("message", p.AndTerms[0])), Occur.MUST },
                { new TermQuery(new Term("message", p.AndTerms[1])), Occur.MUST },
            }),
            "field_eq" => Count(searcher, new TermQuery(new Term("level", p.Level))),
            "wildcard" => Count(searcher, new PrefixQuery(new Term("host", p.HostPrefix))),
            "narrow_time" => Count(searcher, new BooleanQuery
            {
                { new TermQuery(new Term("message", p.NarrowTerm)), Occur.MUST },
                { NumericRangeQuery.NewInt64Range("t", new DateTimeOffset(p.NarrowFrom).ToUnixTimeMilliseconds(), new DateTimeOffset(p.NarrowTo).ToUnixTimeMilliseconds(), true, false), Occur.MUST },
            }),
            "count_by" => CountByLevel(),
            "histogram" => Histogram((long)p.HistogramSpan.TotalMilliseconds),
            _ => null,
        };
        return Task.FromResult(result);
    }

    private static PhraseQuery Phrase(string[] words)
    {
        var query = new PhraseQuery();
        foreach (var word in words)
        {
            query.Add(new Term("message", word));
        }
        return query;
    }

    /// <summary>What a search page does: the top 100 (by relevance here) and the total.</summary>
    private static long Count(IndexSearcher searcher, Query query) => searcher.Search(query, 100).TotalHits;

    private long CountByLevel()
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var leaf in _reader!.Leaves)
        {
            var values = leaf.AtomicReader.GetSortedDocValues("level");
            var perOrd = new long[values.ValueCount];
            for (var doc = 0; doc < leaf.AtomicReader.MaxDoc; doc++)
            {
                var ord = values.GetOrd(doc);
                if (ord >= 0)
                {
                    perOrd[ord]++;
                }
            }
            var term = new BytesRef();
            for (var ord = 0; ord < perOrd.Length; ord++)
            {
                values.LookupOrd(ord, term);
                var key = term.Utf8ToString();
                counts[key] = counts.GetValueOrDefault(key) + perOrd[ord];
            }
        }
        return counts.Values.Sum();
    }

    private long Histogram(long spanMs)
    {
        var counts = new Dictionary<long, long>();
        foreach (var leaf in _reader!.Leaves)
        {
            var values = leaf.AtomicReader.GetNumericDocValues("t");
            for (var doc = 0; doc < leaf.AtomicReader.MaxDoc; doc++)
            {
                var bucket = values.Get(doc) / spanMs;
                counts[bucket] = counts.GetValueOrDefault(bucket) + 1;
            }
        }
        return counts.Values.Sum();
    }

    public ValueTask DisposeAsync()
    {
        _reader?.Dispose();
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }
}
