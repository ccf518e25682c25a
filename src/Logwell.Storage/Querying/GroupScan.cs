using Logwell.Core.Events;
using Logwell.Storage.Engine;
using Logwell.Storage.Segments;

namespace Logwell.Storage.Querying;

/// <summary>
/// Rows that an aggregation visits together: the matching rows of one block, or the matching events held in memory.
/// Each row has its group (by the values of the <c>by</c> fields; -1 when one of them is missing), its time (when asked
/// for) and the values of the columns the aggregation asked for, decoded once for the batch.
/// </summary>
internal sealed class RowBatch(int count, ulong[] rows, int[] groups, long[] times, FieldValue[]?[] columns, DictionaryColumn?[]? codes = null)
{
    public int Count => count;

    /// <summary>The rows to visit, ascending.</summary>
    public RowBits.Enumerator Rows => RowBits.Rows(rows);

    public int Group(int row) => groups[row];

    public long Time(int row) => times[row];

    /// <summary>The value of the <paramref name="column"/>-th requested column; <c>default</c> where the row lacks it.</summary>
    public FieldValue Value(int column, int row) => columns[column] is { } values ? values[row] : default;

    /// <summary>
    /// The <paramref name="column"/>-th requested column grouped by dictionary value, when it was asked for so and the
    /// block has it so; <see cref="Value"/> then gives only the rows of <see cref="DictionaryColumn.OtherRows"/>.
    /// </summary>
    public DictionaryColumn? Codes(int column) => codes?[column];

    /// <summary>Whether <paramref name="row"/> is one to visit.</summary>
    public bool Visits(int row) => (rows[row >> 6] & (1UL << row)) != 0;
}

/// <summary>
/// Visits the matching events of a search in batches with their groups. In a block whose <c>by</c> fields are all
/// dictionary-coded, a group is resolved once per combination of codes, so grouping costs a table lookup per row.
/// </summary>
/// <param name="columns">The fields whose values the batches carry (null entries carry none).</param>
/// <param name="withTimes">Whether batches carry the rows' times (blocks decode them only then).</param>
/// <param name="coded">Per column, whether a batch gives it grouped by dictionary value where a block has it so (<see cref="RowBatch.Codes"/>).</param>
internal sealed class GroupScan(IReadOnlyList<string> by, IReadOnlyList<string?> columns, bool withTimes, IReadOnlyList<bool>? coded = null)
{
    /// <summary>Above this many code combinations a block groups row by row through the values' text.</summary>
    private const int MaxCombinations = 1 << 16;

    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

    /// <summary>The values of the <c>by</c> fields of each group, by group id.</summary>
    public List<string[]> Keys { get; } = [];

    public void Run(IPipelineSource source, SearchRequest request, CancellationToken cancellationToken, Action<RowBatch> visit) =>
        source.Scan(request, cancellationToken, (rows, mask) => visit(OfBlock(rows, mask)), events => visit(OfEvents(events)));

    private int IdOf(string[] keys)
    {
        var id = string.Join('\u0001', keys);
        if (!_ids.TryGetValue(id, out var group))
        {
            group = Keys.Count;
            _ids[id] = group;
            Keys.Add([.. keys]);
        }
        return group;
    }

    private RowBatch OfEvents(List<LogEvent> events)
    {
        var groups = new int[events.Count];
        var times = new long[events.Count];
        var values = new FieldValue[]?[columns.Count];
        for (var c = 0; c < columns.Count; c++)
        {
            if (columns[c] is { } name)
            {
                values[c] = [.. events.Select(evt => ValueOf(evt, name))];
            }
        }
        var texts = new string[]?[by.Count];
        for (var f = 0; f < by.Count; f++)
        {
            texts[f] = [.. events.Select(evt => ValueOf(evt, by[f]).SearchText!)];
        }
        var keys = new string[by.Count];
        for (var i = 0; i < events.Count; i++)
        {
            times[i] = events[i].Timestamp;
            groups[i] = GroupOfRow(texts, i, keys);
        }
        return new RowBatch(events.Count, RowBits.All(events.Count), groups, times, values);
    }

    private RowBatch OfBlock(BlockRows rows, ulong[]? mask)
    {
        var count = rows.Count;
        var values = new FieldValue[]?[columns.Count];
        DictionaryColumn?[]? codes = null;
        for (var c = 0; c < columns.Count; c++)
        {
            if (columns[c] is not { } name)
            {
                continue;
            }
            if (coded is not null && coded[c] && rows.FieldCodes(name) is { } dictionary)
            {
                // No value per row: the few rows that hold other kinds than strings are read as values.
                (codes ??= new DictionaryColumn?[columns.Count])[c] = dictionary;
                values[c] = dictionary.OtherRows.Length > 0 ? Column(rows, name) : null;
                continue;
            }
            values[c] = Column(rows, name);
        }
        var visited = mask ?? RowBits.All(count);
        return new RowBatch(count, visited, GroupsOf(rows, visited), withTimes ? rows.Timestamps : [], values, codes);
    }

    private int[] GroupsOf(BlockRows rows, ulong[] mask)
    {
        var groups = new int[rows.Count];
        if (by.Count == 0)
        {
            Array.Fill(groups, IdOf([]));
            return groups;
        }
        // Per field, each row's code: 0 for no value, 1 + the dictionary code, or -1 for a value of another kind.
        var dictionaries = new DictionaryColumn[by.Count];
        var strides = new int[by.Count];
        long combinations = 1;
        for (var f = 0; f < by.Count; f++)
        {
            if (rows.FieldCodes(by[f]) is not { } dictionary || combinations * (dictionary.Values.Length + 1) > MaxCombinations)
            {
                return GroupsByText(rows, mask, groups);
            }
            dictionaries[f] = dictionary;
            strides[f] = (int)combinations;
            combinations *= dictionary.Values.Length + 1;
        }
        var local = new int[rows.Count];
        var other = new bool[rows.Count];
        for (var f = 0; f < by.Count; f++)
        {
            var dictionary = dictionaries[f];
            for (var code = 0; code < dictionary.Values.Length; code++)
            {
                foreach (var row in dictionary.RowsOf(code))
                {
                    local[row] += (code + 1) * strides[f];
                }
            }
            foreach (var row in dictionary.OtherRows)
            {
                other[row] = true;
            }
        }
        // -2: not resolved yet; -1: a field is missing, no group.
        var table = new int[combinations];
        Array.Fill(table, -2);
        var keys = new string[by.Count];
        string[]?[]? texts = null;
        foreach (var row in RowBits.Rows(mask))
        {
            if (other[row])
            {
                texts ??= TextsOf(rows);
                groups[row] = GroupOfRow(texts, row, keys);
                continue;
            }
            var combination = local[row];
            var group = table[combination];
            if (group == -2)
            {
                group = 0;
                for (var f = 0; f < by.Count && group == 0; f++)
                {
                    var code = combination / strides[f] % (dictionaries[f].Values.Length + 1);
                    if (code == 0)
                    {
                        group = -1;
                    }
                    else
                    {
                        keys[f] = dictionaries[f].Values[code - 1];
                    }
                }
                table[combination] = group = group == -1 ? -1 : IdOf(keys);
            }
            groups[row] = group;
        }
        return groups;
    }

    private int[] GroupsByText(BlockRows rows, ulong[] mask, int[] groups)
    {
        var texts = TextsOf(rows);
        var keys = new string[by.Count];
        foreach (var row in RowBits.Rows(mask))
        {
            groups[row] = GroupOfRow(texts, row, keys);
        }
        return groups;
    }

    private int GroupOfRow(string[]?[] texts, int row, string[] keys)
    {
        for (var f = 0; f < by.Count; f++)
        {
            if (texts[f]?[row] is not { } key)
            {
                return -1;
            }
            keys[f] = key;
        }
        return IdOf(keys);
    }

    /// <summary>The search text of every row for each <c>by</c> field (null where a row has no value).</summary>
    private string[]?[] TextsOf(BlockRows rows)
    {
        var texts = new string[]?[by.Count];
        for (var f = 0; f < by.Count; f++)
        {
            if (Column(rows, by[f]) is { } values)
            {
                texts[f] = [.. values.Select(v => v.SearchText!)];
            }
        }
        return texts;
    }

    /// <summary>A field's values in a block; the message stands for a field named <c>message</c> the block lacks.</summary>
    private static FieldValue[]? Column(BlockRows rows, string name)
    {
        if (rows.Field(name) is { } values)
        {
            return values;
        }
        if (!string.Equals(name, EventMatcher.MessageField, StringComparison.Ordinal))
        {
            return null;
        }
        var messages = new FieldValue[rows.Count];
        for (var row = 0; row < messages.Length; row++)
        {
            messages[row] = FieldValue.FromString(rows.Message(row));
        }
        return messages;
    }

    private static FieldValue ValueOf(LogEvent evt, string name) =>
        evt.TryGetField(name, out var value) ? value
        : string.Equals(name, EventMatcher.MessageField, StringComparison.Ordinal) ? FieldValue.FromString(evt.Message)
        : default;
}
