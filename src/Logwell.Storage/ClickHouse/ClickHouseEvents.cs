using System.Buffers;
using System.Text.Json;
using Logwell.Core.Events;

namespace Logwell.Storage.ClickHouse;

/// <summary>
/// How an index set's events are kept in ClickHouse: one MergeTree table per index set (<c>logwell_events_NAME</c>),
/// partitioned by UTC day and ordered by time, so that retention drops whole partitions of one table
/// (<c>ALTER TABLE … DROP PARTITION</c>, cheap on every release) instead of mutating a table shared by all index sets,
/// which on 18.16 rewrites parts and waits on the last quorum-written one; deleting an index set drops its table.
/// <para>
/// Columns hold an event exactly, in the forms 18.16 has (no <c>DateTime64</c>, no <c>Map</c>): the time in .NET ticks
/// (<c>t</c>, 100 ns, UTC), a 63-bit <c>seq</c> drawn by the writer (with <c>t</c> it orders events and names them in
/// cursors, unique across nodes without coordination), the message, and the fields as parallel arrays in the event's
/// order: name, kind (<see cref="FieldKind"/>), text (the value as search reads it: strings, JSON, numbers and booleans
/// as text), integer and floating-point value.
/// </para>
/// </summary>
public static class ClickHouseEvents
{
    public const string TablePrefix = "logwell_events_";

    /// <summary>Ticks between 0001-01-01 and the Unix epoch.</summary>
    private const long EpochTicks = 621_355_968_000_000_000;

    public static string Table(string indexSet) => TablePrefix + indexSet;

    /// <summary>The prefix of the columns that hold one field's first occurrence (see <see cref="FieldColumnDdl"/>).</summary>
    public const string FieldColumnPrefix = "lw_f_";

    /// <summary>The prefix of the columns that hold the kind of one field's first occurrence (0 where it is absent).</summary>
    public const string KindColumnPrefix = "lw_k_";

    /// <summary>
    /// The column holding the text of field <paramref name="name"/>'s first occurrence: named by a hash of the name,
    /// so that any field name (any characters, any length) makes a plain identifier, the same on every node.
    /// </summary>
    public static string FieldColumn(string name) => FieldColumnPrefix + NameHash(name);

    /// <summary>The column holding the kind of field <paramref name="name"/>'s first occurrence.</summary>
    public static string KindColumn(string name) => KindColumnPrefix + NameHash(name);

    private static string NameHash(string name) =>
        System.IO.Hashing.XxHash64.HashToUInt64(System.Text.Encoding.UTF8.GetBytes(name)).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// The statements that give field <paramref name="name"/> columns of its own: MATERIALIZED from the arrays, so
    /// writers need not know of them (a node that has not yet seen them inserts as before), parts written earlier
    /// compute them when read, and a search on the field reads one short column instead of three arrays.
    /// </summary>
    public static IEnumerable<string> FieldColumnDdl(string indexSet, string name)
    {
        var table = ClickHouseSql.Identifier(Table(indexSet));
        var at = $"indexOf(field_names, {ClickHouseSql.Literal(name)})";
        yield return $"ALTER TABLE {table} ADD COLUMN {ClickHouseSql.Identifier(KindColumn(name))} UInt8 MATERIALIZED field_kinds[{at}]";
        yield return $"ALTER TABLE {table} ADD COLUMN {ClickHouseSql.Identifier(FieldColumn(name))} String MATERIALIZED field_texts[{at}]";
    }

    /// <summary>
    /// The table of <paramref name="indexSet"/>. With <paramref name="zooKeeperPath"/>, a ReplicatedMergeTree under that
    /// path with the server's <c>{replica}</c> macro (and <c>{shard}</c> when the path holds it).
    /// </summary>
    public static string CreateTable(string indexSet, string? zooKeeperPath = null)
    {
        // A replicated table remembers its last 1,000 blocks (not 100), so a batch a client sends again after losing the
        // answer is recognised even while the other nodes insert many blocks meanwhile.
        var settings = zooKeeperPath is null ? "" : " SETTINGS index_granularity = 8192, replicated_deduplication_window = 1000";
        var engine = zooKeeperPath is null
            ? "MergeTree"
            : $"ReplicatedMergeTree({ClickHouseSql.Literal(zooKeeperPath.TrimEnd('/') + "/" + Table(indexSet))}, '{{replica}}')";
        return $"""
            CREATE TABLE IF NOT EXISTS {ClickHouseSql.Identifier(Table(indexSet))} (
                t Int64,
                seq UInt64,
                day Date MATERIALIZED toDate(toDateTime(intDiv(t - {EpochTicks}, 10000000), 'UTC')),
                message String,
                field_names Array(String),
                field_kinds Array(UInt8),
                field_texts Array(String),
                field_longs Array(Int64),
                field_doubles Array(Float64)
            ) ENGINE = {engine} PARTITION BY day ORDER BY (t, seq){settings}
            """;
    }

    /// <summary>
    /// The events as one JSONEachRow block, with a <c>seq</c> drawn for each event that has none. The block is built
    /// once and sent as is on every retry, so a replicated table's block deduplication can recognise it.
    /// </summary>
    public static byte[] Block(IReadOnlyList<LogEvent> events)
    {
        var buffer = new ArrayBufferWriter<byte>(events.Count * 256);
        // UTF-8 as it is (quotes, backslashes and control characters escaped): smaller than \u escapes for every non-ASCII character.
        using var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        foreach (var evt in events)
        {
            if (evt.Seq == 0)
            {
                evt.Seq = Random.Shared.NextInt64(1, long.MaxValue);
            }
            writer.Reset(buffer);
            writer.WriteStartObject();
            writer.WriteNumber("t", evt.Timestamp);
            writer.WriteNumber("seq", evt.Seq);
            writer.WriteString("message", evt.Message);
            WriteArray(writer, "field_names", evt.Fields, static (w, f) => w.WriteStringValue(f.Name));
            WriteArray(writer, "field_kinds", evt.Fields, static (w, f) => w.WriteNumberValue((byte)f.Value.Kind));
            // Numbers and booleans also as the text search reads them, so that one condition on the texts covers every kind.
            WriteArray(writer, "field_texts", evt.Fields, static (w, f) => w.WriteStringValue(f.Value.SearchText ?? ""));
            WriteArray(writer, "field_longs", evt.Fields, static (w, f) => w.WriteNumberValue(f.Value.Kind == FieldKind.Long ? f.Value.Long : 0));
            // A double that JSON cannot write (NaN, infinities) does not come from ingest, which reads JSON.
            WriteArray(writer, "field_doubles", evt.Fields, static (w, f) => w.WriteNumberValue(f.Value.Kind == FieldKind.Double && double.IsFinite(f.Value.Double) ? f.Value.Double : 0));
            writer.WriteEndObject();
            writer.Flush();
            buffer.Write("\n"u8);
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The columns <see cref="Read"/> takes, for a SELECT.</summary>
    public const string Columns = "t, seq, message, field_names, field_kinds, field_texts, field_longs, field_doubles";

    /// <summary>A 64-bit integer as JSONEachRow writes it: quoted by default, bare where a server is told otherwise.</summary>
    public static long Int64(JsonElement value) => value.ValueKind == JsonValueKind.String
        ? (long)ulong.Parse(value.GetString()!, System.Globalization.CultureInfo.InvariantCulture)
        : value.GetInt64();

    /// <summary>An event from a row of <see cref="Columns"/> read as JSONEachRow.</summary>
    public static LogEvent Read(JsonElement row)
    {
        var names = row.GetProperty("field_names");
        var kinds = row.GetProperty("field_kinds");
        var texts = row.GetProperty("field_texts");
        var longs = row.GetProperty("field_longs");
        var doubles = row.GetProperty("field_doubles");
        var fields = new Field[names.GetArrayLength()];
        for (var i = 0; i < fields.Length; i++)
        {
            var kind = (FieldKind)kinds[i].GetByte();
            var value = kind switch
            {
                FieldKind.Null => FieldValue.Null,
                FieldKind.True => FieldValue.True,
                FieldKind.False => FieldValue.False,
                FieldKind.Long => FieldValue.FromLong(longs[i].GetInt64()),
                FieldKind.Double => FieldValue.FromDouble(doubles[i].GetDouble()),
                FieldKind.String => FieldValue.FromString(texts[i].GetString()!),
                FieldKind.Json => FieldValue.FromJson(texts[i].GetString()!),
                _ => throw new InvalidDataException($"field kind {(int)kind} in a ClickHouse row"),
            };
            fields[i] = new Field(names[i].GetString()!, value);
        }
        return new LogEvent(row.GetProperty("t").GetInt64(), row.GetProperty("message").GetString()!, fields) { Seq = row.GetProperty("seq").GetInt64() };
    }

    private static void WriteArray(Utf8JsonWriter writer, string name, FieldList fields, Action<Utf8JsonWriter, Field> write)
    {
        writer.WriteStartArray(name);
        foreach (var field in fields)
        {
            write(writer, field);
        }
        writer.WriteEndArray();
    }
}
