using Logwell.Core.Events;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

public sealed class MemTableTests
{
    private static string Describe(LogEvent e) =>
        $"{e.Timestamp} {e.Seq} {e.Message} " + string.Join(",", e.Fields.AsSpan().ToArray().Select(f => $"{f.Name}={f.Value}"));

    private static List<LogEvent> Events(int from, int count)
    {
        var events = new List<LogEvent>();
        for (var i = from; i < from + count; i++)
        {
            var fields = new List<Field>
            {
                // Values that repeat (shared), values that never do (past the bound of shared values), long ones.
                new("host", FieldValue.FromString($"web-{i % 7}")),
                new("trace_id", FieldValue.FromString($"{i * 2654435761L:x16}")),
                new("level", FieldValue.FromString(i % 3 == 0 ? "ERROR" : "INFO")),
            };
            if (i % 5 == 0)
            {
                fields.Add(new Field("payload", FieldValue.FromString(new string('x', 100 + i % 50) + "é✓")));
            }
            if (i % 4 == 0)
            {
                fields.Add(new Field("status", i % 8 == 0 ? FieldValue.FromLong(500 + i) : FieldValue.FromDouble(i / 3.0)));
            }
            if (i % 6 == 0)
            {
                fields.Add(new Field("tags", FieldValue.FromJson("[\"a\",1]")));
                fields.Add(new Field("ok", FieldValue.FromBool(i % 12 == 0)));
                fields.Add(new Field("gone", FieldValue.Null));
            }
            if (i % 9 == 0)
            {
                // The same name as another field's value, and a field listed first only sometimes.
                fields.Insert(0, new Field("web-1", FieldValue.FromString("host")));
            }
            events.Add(new LogEvent(1_000_000 + i * 10L, i % 11 == 0 ? "" : $"request {i} served in {i % 100} ms ✓", [.. fields]) { Seq = i + 1 });
        }
        return events;
    }

    [Fact]
    public void EventsComeBackAsTheyWentInAndASnapshotStaysAsItWasTaken()
    {
        var table = new MemTable("wal-test.log");
        var first = Events(0, 3000);
        table.Add(first);
        var before = table.Snapshot();
        // Enough more to grow every array and take more chunks, and to pass the bound of shared values per field.
        var second = Events(3000, 20_000);
        table.Add(second);
        var after = table.Snapshot();

        Assert.Equal(3000, before.Count);
        Assert.Equal(first.Select(Describe), Enumerable.Range(0, before.Count).Select(i => Describe(before.Event(i))));
        Assert.Equal(first.Concat(second).Select(Describe), Enumerable.Range(0, after.Count).Select(i => Describe(after.Event(i))));
        Assert.Equal((1_000_000, 1_000_000 + 22_999 * 10L, 23_000L), (table.MinTime, table.MaxTime, table.MaxSeq));
        // Repeated values come back as one instance, as the ingest decoders give them.
        Assert.Same(after.Event(7).Fields.AsSpan().ToArray().First(f => f.Name == "host").Value.Text,
            after.Event(14).Fields.AsSpan().ToArray().First(f => f.Name == "host").Value.Text);
        // Far less than the events as objects.
        Assert.InRange(table.Bytes, 23_000 * 50, 23_000 * 250);
    }

    [Fact]
    public void ARetiredTableKeepsItsMemoryForItsLastReader()
    {
        var table = new MemTable("wal-test.log");
        var events = Events(0, 5000);
        table.Add(events);
        table.Acquire();
        var snapshot = table.Snapshot();
        table.Retire();
        // Another table takes chunks from the pool meanwhile: none of the reader's.
        var other = new MemTable("wal-other.log");
        other.Add(Events(10_000, 5000));
        Assert.Equal(events.Select(Describe), Enumerable.Range(0, snapshot.Count).Select(i => Describe(snapshot.Event(i))));
        table.Release();
        Assert.Throws<InvalidOperationException>(table.Acquire);
    }
}
