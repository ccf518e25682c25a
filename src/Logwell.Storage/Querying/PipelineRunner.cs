using System.Globalization;
using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Core.Query;
using Logwell.Core.Time;
using Logwell.Storage.Engine;
using Logwell.Storage.Segments;

namespace Logwell.Storage.Querying;

/// <summary>What a pipeline reads of an index set: the store answers searches and counts its own way.</summary>
internal interface IPipelineSource
{
    SearchResult Search(SearchRequest request, CancellationToken cancellationToken);

    CountByResult CountBy(SearchRequest request, string field, CancellationToken cancellationToken);

    HistogramResult Histogram(SearchRequest request, long bucketTicks, CancellationToken cancellationToken);

    (long Min, long Max)? TimeBounds();

    /// <summary>
    /// Visits the matching events: as block rows (all of a block's rows, or those of the mask) or as lists of events,
    /// each in any order.
    /// </summary>
    void Scan(SearchRequest request, CancellationToken cancellationToken, Action<BlockRows, ulong[]?> block, Action<List<LogEvent>> events);
}

/// <summary>The table a pipeline produces: named columns, rows of strings, numbers or nulls.</summary>
public sealed record ResultTable(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows, bool Truncated);

/// <summary>
/// Runs a query's pipe stages over an index set. <c>stats</c>, <c>timechart</c>, <c>top</c> and <c>rare</c> visit every
/// match (reading only the columns they name); so does a first <c>sort</c>, which keeps the first matching events in its
/// order. Otherwise the table starts as the newest matching events. Either holds at most
/// <see cref="PipelineParser.MaxRows"/> events (fewer when a <c>head</c> follows). <c>fields</c>, <c>sort</c>,
/// <c>head</c> and <c>where</c> then shape the table.
/// </summary>
public static class PipelineRunner
{
    private const int MaxSeries = 20;

    public static ResultTable Run(IndexSetStore store, Pipeline pipeline, long? from, long? to, CancellationToken cancellationToken) =>
        Run((IPipelineSource)store, pipeline, from, to, cancellationToken);

    internal static ResultTable Run(IPipelineSource store, Pipeline pipeline, long? from, long? to, CancellationToken cancellationToken)
    {
        var request = new SearchRequest(pipeline.Query, from, to);
        var stages = pipeline.Stages;
        ResultTable table;
        var rest = 1;
        switch (stages[0])
        {
            case StatsStage stats:
                table = Stats(store, request, stats, cancellationToken);
                break;
            case TopStage top:
                table = Top(store, request, top, cancellationToken);
                break;
            case PatternsStage patterns:
                table = Patterns(store, request, patterns, cancellationToken);
                break;
            case TimechartStage chart:
                table = Timechart(store, request, chart, cancellationToken);
                break;
            case SortStage sort:
                // The engine orders every match, not only the newest page.
                var ordered = request with { Limit = FirstRows(stages, 1) };
                ordered = RangeMatcher.TimestampFields.Contains(sort.Column)
                    ? ordered with { OldestFirst = !sort.Descending }
                    : ordered with { OrderBy = new FieldOrder(sort.Column, sort.Descending) };
                table = Events(store, ordered, cancellationToken);
                break;
            default:
                table = Events(store, request with { Limit = FirstRows(stages, 0) }, cancellationToken);
                rest = 0;
                break;
        }
        foreach (var stage in stages.Skip(rest))
        {
            table = stage switch
            {
                FieldsStage fields => Project(table, fields.Columns),
                SortStage sort => Sort(table, sort),
                HeadStage head => table with { Rows = [.. table.Rows.Take(head.Count)] },
                WhereStage where => Where(table, where.Condition),
                _ => throw new InvalidOperationException($"stage {stage} must come first"),
            };
        }
        return table;
    }

    /// <summary>How many events the table needs: a <c>head</c> at <paramref name="at"/> says, else the most a table holds.</summary>
    private static int FirstRows(IReadOnlyList<PipeStage> stages, int at) =>
        at < stages.Count && stages[at] is HeadStage head ? Math.Min(head.Count, PipelineParser.MaxRows) : PipelineParser.MaxRows;

    private sealed class Accumulator(Aggregation aggregation)
    {
        private long _count;
        private double _sum;
        private double _min = double.PositiveInfinity;
        private double _max = double.NegativeInfinity;
        private HashSet<string>? _distinct;
        private List<double>? _values;

        /// <summary>Adds a row: its value of the aggregation's field (anything for <c>count()</c>).</summary>
        public void Add(in FieldValue value)
        {
            if (aggregation.Field is null)
            {
                _count++;
                return;
            }
            if (value.Kind is 0 or FieldKind.Null)
            {
                return;
            }
            switch (aggregation.Function)
            {
                case "count":
                    _count++;
                    return;
                case "count_distinct":
                    AddDistinct(value.SearchText!);
                    return;
            }
            if (Number(value) is not { } number)
            {
                return;
            }
            _count++;
            _sum += number;
            _min = Math.Min(_min, number);
            _max = Math.Max(_max, number);
            if (aggregation.Function == "percentile")
            {
                (_values ??= []).Add(number);
            }
        }

        /// <summary>Adds a value to <c>count_distinct</c>'s set.</summary>
        public void AddDistinct(string text) => (_distinct ??= new HashSet<string>(StringComparer.Ordinal)).Add(text);

        public object? Result() => aggregation.Function switch
        {
            "count" => _count,
            "count_distinct" => (long)(_distinct?.Count ?? 0),
            _ when _count == 0 => null,
            "sum" => _sum,
            "avg" => _sum / _count,
            "min" => _min,
            "max" => _max,
            "percentile" => Percentile(_values!, aggregation.Percentile),
            _ => throw new InvalidOperationException($"unknown aggregation {aggregation.Function}"),
        };

        // Nearest rank: the smallest value with at least p% of the values at or below it.
        private static double Percentile(List<double> values, int p)
        {
            values.Sort();
            var rank = (int)Math.Ceiling(p / 100.0 * values.Count);
            return values[Math.Clamp(rank - 1, 0, values.Count - 1)];
        }
    }

    private static double? Number(FieldValue value) => value.Kind switch
    {
        FieldKind.Long => value.Long,
        FieldKind.Double => value.Double,
        FieldKind.String when double.TryParse(value.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) => d,
        _ => null,
    };

    private static ResultTable Stats(IPipelineSource store, SearchRequest request, StatsStage stats, CancellationToken cancellationToken)
    {
        if (stats.By.Count == 1 && stats.Aggregations.All(a => a.Function == "count" && a.Field is null))
        {
            // Counts by one field: the engine counts them from dictionary codes and postings.
            var counts = store.CountBy(request, stats.By[0], cancellationToken);
            var counted = counts.Counts.OrderBy(c => c.Key, StringComparer.Ordinal)
                .Select(c => new object?[] { c.Key }.Concat(stats.Aggregations.Select(_ => (object?)c.Value)).ToArray())
                .ToList();
            return Limit([stats.By[0], .. stats.Aggregations.Select(a => a.Name)], counted);
        }
        // count_distinct takes dictionary-coded columns by value: each value of a block is added to a group's set once,
        // not once per row (a set insert per row made count_distinct(host) over 10M events take a second).
        var distinct = stats.Aggregations.Select(a => a.Function == "count_distinct").ToArray();
        var scan = new GroupScan(stats.By, [.. stats.Aggregations.Select(a => a.Field)], withTimes: false, distinct);
        var groups = new List<Accumulator[]>();
        var added = Array.Empty<int>();
        var stamp = 0;
        scan.Run(store, request, cancellationToken, batch =>
        {
            foreach (var row in batch.Rows)
            {
                var group = batch.Group(row);
                if (group < 0)
                {
                    // Events without a by field are left out, as they have no group.
                    continue;
                }
                while (groups.Count <= group)
                {
                    groups.Add([.. stats.Aggregations.Select(a => new Accumulator(a))]);
                }
                var accumulators = groups[group];
                for (var a = 0; a < accumulators.Length; a++)
                {
                    if (batch.Codes(a) is not { } codes || codes.OtherRows.AsSpan().BinarySearch(row) >= 0)
                    {
                        accumulators[a].Add(batch.Value(a, row));
                    }
                }
            }
            for (var a = 0; a < distinct.Length; a++)
            {
                if (batch.Codes(a) is not { } codes)
                {
                    continue;
                }
                if (added.Length < groups.Count || stamp > int.MaxValue - codes.Values.Length)
                {
                    added = new int[Math.Max(groups.Count, added.Length * 2)];
                    stamp = 0;
                    Array.Clear(added);
                }
                for (var code = 0; code < codes.Values.Length; code++)
                {
                    // Groups this value was added to in this pass are marked with this pass's stamp.
                    stamp++;
                    foreach (var row in codes.RowsOf(code))
                    {
                        var group = batch.Visits(row) ? batch.Group(row) : -1;
                        if (group >= 0 && added[group] != stamp)
                        {
                            added[group] = stamp;
                            groups[group][a].AddDistinct(codes.Values[code]);
                        }
                    }
                }
            }
        });
        if (groups.Count == 0 && stats.By.Count == 0)
        {
            scan.Keys.Add([]);
            groups.Add([.. stats.Aggregations.Select(a => new Accumulator(a))]);
        }
        var rows = groups.Select((accumulators, id) => (Keys: scan.Keys[id], Accumulators: accumulators))
            .OrderBy(g => string.Join('\u0001', g.Keys), StringComparer.Ordinal)
            .Select(g => g.Keys.Cast<object?>().Concat(g.Accumulators.Select(a => a.Result())).ToArray())
            .ToList();
        return Limit([.. stats.By, .. stats.Aggregations.Select(a => a.Name)], rows);
    }

    private static ResultTable Top(IPipelineSource store, SearchRequest request, TopStage top, CancellationToken cancellationToken)
    {
        var counts = store.CountBy(request, top.Field, cancellationToken);
        var ordered = top.Rare
            ? counts.Counts.OrderBy(c => c.Value).ThenBy(c => c.Key, StringComparer.Ordinal)
            : counts.Counts.OrderByDescending(c => c.Value).ThenBy(c => c.Key, StringComparer.Ordinal);
        var rows = ordered.Take(top.Count)
            .Select(c => new object?[] { c.Key, c.Value, Math.Round(100.0 * c.Value / Math.Max(1, counts.Total), 2) })
            .ToList();
        return new ResultTable([top.Field, "count", "percent"], rows, false);
    }

    /// <summary>
    /// The templates of the matching events' messages (<see cref="PatternSummary"/>): pattern id, template, count, share
    /// of the matches, first and last seen, and the newest message as an example. With <c>compare</c>, the events of
    /// the same window that long before go through the same miner first, and each row gets their count, the change in
    /// percent, and whether the template is new. Last, <c>trend</c>: the row's events in 24 equal slices of the window,
    /// oldest first, as comma-separated counts; and <c>stored_ids</c>: the pattern ids ingest gave the row's events,
    /// most frequent first, space-separated (<c>pattern:(a OR b)</c> finds their events).
    /// </summary>
    private static ResultTable Patterns(IPipelineSource store, SearchRequest request, PatternsStage patterns, CancellationToken cancellationToken)
    {
        var bounds = store.TimeBounds();
        var from = request.From ?? bounds?.Min ?? 0;
        var to = request.To ?? (bounds is { } b ? b.Max + 1 : from + 1);
        var summary = new PatternSummary(from, to, TrendSlices);
        var scan = new GroupScan([], [EventMatcher.MessageField, PatternTagger.Field], withTimes: true);
        void Visit(SearchRequest window, bool previous) => scan.Run(store, window, cancellationToken, batch =>
        {
            foreach (var row in batch.Rows)
            {
                if (batch.Value(0, row).SearchText is { } message)
                {
                    var stored = batch.Value(1, row);
                    summary.Add(message, batch.Time(row), previous, PatternTagger.IsId(stored) ? stored.Text : null);
                }
            }
        });
        if (patterns.CompareTicks > 0)
        {
            if (to - from > patterns.CompareTicks)
            {
                // The two windows would overlap: events counted in both, and "new" would mean little.
                throw new ArgumentException($"compare needs a window no longer than its span: choose from and to at most {TimeSpan.FromTicks(patterns.CompareTicks).TotalHours:0.##} hours apart, or a longer compare");
            }
            Visit(request with { From = from - patterns.CompareTicks, To = to - patterns.CompareTicks }, previous: true);
            request = request with { From = from, To = to };
        }
        Visit(request, previous: false);
        var rows = summary.Rows().Take(patterns.Count).Select(r =>
        {
            var row = new List<object?>
            {
                r.Id, r.Template, r.Count, Math.Round(100.0 * r.Count / Math.Max(1, summary.Total), 2),
                new DateTime(r.FirstSeen, DateTimeKind.Utc), new DateTime(r.LastSeen, DateTimeKind.Utc), r.Example,
            };
            if (patterns.CompareTicks > 0)
            {
                row.Add(r.Previous);
                row.Add(r.Previous == 0 ? null : Math.Round(100.0 * (r.Count - r.Previous) / r.Previous, 1));
                row.Add(r.Previous == 0);
            }
            row.Add(string.Join(',', r.Trend ?? new long[TrendSlices]));
            row.Add(string.Join(' ', r.StoredIds));
            return row.ToArray();
        }).ToList();
        string[] columns = ["pattern", "template", "count", "percent", "first_seen", "last_seen", "example"];
        return new ResultTable(patterns.CompareTicks > 0 ? [.. columns, "previous", "change", "new", "trend", "stored_ids"] : [.. columns, "trend", "stored_ids"], rows, false);
    }

    /// <summary>The slices of a <c>patterns</c> row's <c>trend</c>: its events over the window, for a sparkline.</summary>
    private const int TrendSlices = 24;

    private static ResultTable Timechart(IPipelineSource store, SearchRequest request, TimechartStage chart, CancellationToken cancellationToken)
    {
        var bounds = store.TimeBounds();
        var from = request.From ?? bounds?.Min ?? 0;
        var to = request.To ?? (bounds is { } b ? b.Max + 1 : from + 1);
        var span = chart.SpanTicks > 0 ? chart.SpanTicks : Intervals.Auto(Math.Max(1, to - from));
        if ((to - from) / span > PipelineParser.MaxRows)
        {
            throw new ArgumentException($"span makes more than {PipelineParser.MaxRows} rows over this window: widen the span or narrow the window");
        }
        if (chart.By is null && chart.Aggregation is { Function: "count", Field: null })
        {
            // Counts per interval: the engine's histogram, from timestamps alone.
            var histogram = store.Histogram(request with { From = from, To = to }, span, cancellationToken);
            var counted = new List<object?[]>();
            for (var bucket = Intervals.Floor(from, span); bucket < to; bucket += span)
            {
                counted.Add([new DateTime(bucket, DateTimeKind.Utc), histogram.Counts.GetValueOrDefault(bucket)]);
            }
            return new ResultTable(["t", chart.Aggregation.Name], counted, false);
        }
        // Per series (a group of the by field, or the one group without it), an accumulator per interval.
        var first = Intervals.Floor(from, span);
        var intervals = (int)((to - first + span - 1) / span);
        var scan = new GroupScan(chart.By is null ? [] : [chart.By], [chart.Aggregation.Field], withTimes: true);
        var cells = new List<Accumulator?[]>();
        var seriesRows = new List<long>();
        scan.Run(store, request with { From = from, To = to }, cancellationToken, batch =>
        {
            foreach (var row in batch.Rows)
            {
                var series = batch.Group(row);
                if (series < 0)
                {
                    continue;
                }
                while (cells.Count <= series)
                {
                    cells.Add(new Accumulator?[intervals]);
                    seriesRows.Add(0);
                }
                var interval = (int)((batch.Time(row) - first) / span);
                (cells[series][interval] ??= new Accumulator(chart.Aggregation)).Add(batch.Value(0, row));
                seriesRows[series]++;
            }
        });
        // The series with the most events, at most 20 of them.
        var shown = chart.By is null
            ? Enumerable.Range(0, cells.Count).ToList()
            : [.. Enumerable.Range(0, cells.Count).OrderByDescending(s => seriesRows[s]).ThenBy(s => scan.Keys[s][0], StringComparer.Ordinal).Take(MaxSeries)];
        var columns = chart.By is null ? [chart.Aggregation.Name] : shown.Select(s => scan.Keys[s][0]).ToList();
        var rows = new List<object?[]>();
        var empty = new Accumulator(chart.Aggregation).Result();
        for (var interval = 0; interval < intervals; interval++)
        {
            var row = new object?[columns.Count + 1];
            row[0] = new DateTime(first + interval * span, DateTimeKind.Utc);
            for (var c = 0; c < columns.Count; c++)
            {
                row[c + 1] = c < shown.Count && cells[shown[c]][interval] is { } accumulator ? accumulator.Result() : empty;
            }
            rows.Add(row);
        }
        return new ResultTable(["t", .. columns], rows, chart.By is not null && cells.Count > columns.Count);
    }

    private static ResultTable Events(IPipelineSource store, SearchRequest request, CancellationToken cancellationToken)
    {
        var result = store.Search(request, cancellationToken);
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var hit in result.Hits)
        {
            foreach (var field in hit.Fields)
            {
                if (seen.Add(field.Name))
                {
                    names.Add(field.Name);
                }
            }
        }
        var rows = result.Hits.Select(hit =>
        {
            var row = new object?[names.Count + 2];
            row[0] = new DateTime(hit.Timestamp, DateTimeKind.Utc);
            row[1] = hit.Message;
            for (var i = 0; i < names.Count; i++)
            {
                row[i + 2] = hit.TryGetField(names[i], out var value) ? Cell(value) : null;
            }
            return row;
        }).ToList();
        return new ResultTable(["t", EventMatcher.MessageField, .. names], rows, result.Total > rows.Count);
    }

    private static object? Cell(FieldValue value) => value.Kind switch
    {
        FieldKind.Long => value.Long,
        FieldKind.Double => value.Double,
        FieldKind.True => true,
        FieldKind.False => false,
        FieldKind.String or FieldKind.Json => value.Text,
        _ => null,
    };

    private static ResultTable Limit(List<string> columns, List<object?[]> rows) =>
        new(columns, rows.Count > PipelineParser.MaxRows ? rows.GetRange(0, PipelineParser.MaxRows) : rows, rows.Count > PipelineParser.MaxRows);

    private static ResultTable Where(ResultTable table, WhereExpression condition)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < table.Columns.Count; i++)
        {
            index.TryAdd(table.Columns[i], i);
        }
        return table with { Rows = [.. table.Rows.Where(row => condition.Matches(column => index.TryGetValue(column, out var i) ? row[i] : null))] };
    }

    private static ResultTable Project(ResultTable table, IReadOnlyList<string> columns)
    {
        var indexes = columns.Select(c => table.Columns.ToList().IndexOf(c)).ToArray();
        var rows = table.Rows.Select(r => indexes.Select(i => i < 0 ? null : r[i]).ToArray()).ToList();
        return new ResultTable([.. columns], rows, table.Truncated);
    }

    private static ResultTable Sort(ResultTable table, SortStage sort)
    {
        var index = table.Columns.ToList().IndexOf(sort.Column);
        if (index < 0)
        {
            throw new ArgumentException($"'sort by {sort.Column}': the table has no such column (it has {string.Join(", ", table.Columns)})");
        }
        var comparer = Comparer<object?>.Create(CompareCells);
        var present = table.Rows.OrderBy(r => r[index] is null);
        var rows = sort.Descending
            ? present.ThenByDescending(r => r[index], comparer).ToList()
            : present.ThenBy(r => r[index], comparer).ToList();
        return table with { Rows = rows };
    }

    /// <summary>Numbers by value, before text; text in ordinal order (a sort puts empty cells last either way).</summary>
    private static int CompareCells(object? a, object? b)
    {
        if (a is null || b is null)
        {
            return (a is null ? 0 : 1) - (b is null ? 0 : 1);
        }
        var x = a is long or double ? Convert.ToDouble(a, CultureInfo.InvariantCulture) : (double?)null;
        var y = b is long or double ? Convert.ToDouble(b, CultureInfo.InvariantCulture) : (double?)null;
        if (x is not null && y is not null)
        {
            return x.Value.CompareTo(y.Value);
        }
        if (x is not null || y is not null)
        {
            return x is not null ? -1 : 1;
        }
        return string.CompareOrdinal(Convert.ToString(a, CultureInfo.InvariantCulture), Convert.ToString(b, CultureInfo.InvariantCulture));
    }
}
