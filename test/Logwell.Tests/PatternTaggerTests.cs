using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Xunit;

namespace Logwell.Tests;

public sealed class PatternTaggerTests
{
    private static readonly string[] Users = ["alice", "bob", "carol", "dave", "erin", "frank"];

    private static LogEvent Event(string message, long time = 1_000, params Field[] fields) => new(time, message, fields);

    private static string PatternOf(LogEvent evt) =>
        evt.TryGetField(PatternTagger.Field, out var value) ? value.Text! : throw new InvalidOperationException($"no pattern on '{evt.Message}'");

    private static List<LogEvent> Logins(int from, int count) =>
        [.. Enumerable.Range(from, count).Select(i => Event($"Accepted password for {Users[i % Users.Length]} from 10.0.{i % 7}.{i % 250} port {1000 + i} ssh2", 1_000 + i))];

    [Fact]
    public void EachEventGetsTheIdOfItsTemplateAsItsClusterStands()
    {
        var tagger = new PatternTagger();
        var events = Logins(0, 12);
        events.Add(Event("Connection closed by 10.0.0.1", 5_000, new Field("host", FieldValue.FromString("web-1"))));
        tagger.Tag(events);

        var last = PatternOf(events[11]);
        Assert.Equal(TemplateMiner.Id("Accepted password for <*> from <*> port <*> ssh2"), last);
        Assert.Equal("Accepted password for <*> from <*> port <*> ssh2", tagger.TemplateOf(last));
        // The first lines came before the user position held more than a few names: their own, more exact template.
        Assert.Equal(TemplateMiner.Id("Accepted password for alice from <*> port <*> ssh2"), PatternOf(events[0]));
        Assert.Equal(TemplateMiner.Id("Connection closed by <*>"), PatternOf(events[12]));
        // The event's own fields stay, in order, and the pattern comes last.
        Assert.Equal(["host", PatternTagger.Field], events[12].Fields.Select(f => f.Name));
    }

    [Fact]
    public void TheIdGoesIntoTheRoomADecodedEventKeepsAndNeverIntoAnArrayOthersHold()
    {
        var host = new Field("host", FieldValue.FromString("web-1"));
        var received = LogEvent.Received(1, "Connection closed by 10.0.0.1", [host]);
        var before = received.Fields;
        var shared = new[] { host };
        var first = new LogEvent(2, "Connection closed by 10.0.0.2", shared);
        var second = new LogEvent(3, "Connection closed by 10.0.0.3", shared);
        var plain = LogEvent.Received(4, "Connection closed by 10.0.0.4", []);
        new PatternTagger().Tag([received, first, second, plain]);

        var id = TemplateMiner.Id("Connection closed by <*>");
        foreach (var evt in new[] { received, first, second })
        {
            Assert.Equal(["host", PatternTagger.Field], evt.Fields.Select(f => f.Name));
            Assert.Equal(id, PatternOf(evt));
        }
        Assert.Equal([PatternTagger.Field], plain.Fields.Select(f => f.Name));
        // A view taken before keeps its length, and the array two events were made from is theirs no more than before.
        Assert.Equal(1, before.Length);
        Assert.Equal([host], shared);
        Assert.Throws<ArgumentOutOfRangeException>(() => before[1]);
    }

    [Fact]
    public void AnEventWithItsOwnPatternOrNoMessageIsLeftAsItIs()
    {
        var tagger = new PatternTagger();
        var own = Event("forwarded line 1", 1, new Field(PatternTagger.Field, FieldValue.FromString("abc123abc123")));
        var empty = Event("", 2);
        var events = new List<LogEvent> { own, empty };
        tagger.Tag(events);
        Assert.Same(own, events[0]);
        Assert.Same(empty, events[1]);
        Assert.Equal(["abc123abc123"], own.Fields.Select(f => f.Value.Text));
        Assert.Empty(empty.Fields);
        Assert.Empty(tagger.TakeSeen());
    }

    [Fact]
    public void WhatWasSeenIsTakenOnceWithTimesCountsAndAFewDifferentMessages()
    {
        var tagger = new PatternTagger();
        var events = Enumerable.Range(0, 20).Select(i => Event($"Connection closed by 10.0.0.{i % 6}", 100 + i)).ToList();
        tagger.Tag(events);

        var seen = Assert.Single(tagger.TakeSeen());
        Assert.Equal("Connection closed by <*>", seen.Template);
        Assert.Equal((100L, 119L, 20L), (seen.FirstSeen, seen.LastSeen, seen.Count));
        Assert.Equal(PatternTagger.ExamplesKept, seen.Examples.Count);
        Assert.Equal(seen.Examples.Count, seen.Examples.Distinct().Count());
        Assert.Empty(tagger.TakeSeen());

        // Stored nowhere: given back, and counted with what came since.
        tagger.Restore([seen]);
        tagger.Tag([Event("Connection closed by 10.0.0.9", 90)]);
        var again = Assert.Single(tagger.TakeSeen());
        Assert.Equal((90L, 119L, 21L), (again.FirstSeen, again.LastSeen, again.Count));
        Assert.Equal(PatternTagger.ExamplesKept, again.Examples.Count);

        // Once a template's examples are stored, no more are collected for it.
        tagger.Tag([Event("Connection closed by 10.0.0.77", 200)]);
        Assert.Empty(Assert.Single(tagger.TakeSeen()).Examples);
    }

    [Fact]
    public void ATaggerThatLearnsWhatAnotherStoredGivesTheSameIds()
    {
        var first = new PatternTagger();
        first.Tag(Logins(0, 30));
        var stored = first.TakeSeen();

        // A new process (a restart, another node) learns the stored templates, then meets a user it never saw.
        var learned = new PatternTagger();
        foreach (var pattern in stored)
        {
            Assert.True(learned.Learn(pattern.Id, pattern.Template, pattern.Examples));
        }
        var line = new List<LogEvent> { Event("Accepted password for zed from 10.9.9.9 port 4242 ssh2") };
        var same = new List<LogEvent> { line[0] };
        learned.Tag(line);
        first.Tag(same);
        Assert.Equal(PatternOf(same[0]), PatternOf(line[0]));
        Assert.Equal("Accepted password for <*> from <*> port <*> ssh2", learned.TemplateOf(PatternOf(line[0])));
        Assert.False(learned.Learn(stored[0].Id, stored[0].Template, stored[0].Examples));

        // Without them, a new user is a word the miner has not seen vary yet.
        var fresh = new PatternTagger();
        var alone = new List<LogEvent> { Event("Accepted password for zed from 10.9.9.9 port 4242 ssh2") };
        fresh.Tag(alone);
        Assert.NotEqual(PatternOf(line[0]), PatternOf(alone[0]));
    }

    [Fact]
    public void ThePatternsPipeGroupsAsItMinesAndListsTheIdsIngestGave()
    {
        var summary = new PatternSummary(0, 100, 4);
        summary.Add("disk full on /dev/sda0", 10, storedId: "aaaaaaaaaaaa");
        summary.Add("disk full on /dev/sdb1", 20, storedId: "bbbbbbbbbbbb");
        summary.Add("disk full on /dev/sdc2", 30, storedId: "bbbbbbbbbbbb");
        summary.Add("disk full on /dev/sdd3", 80);
        summary.Add("disk full on /dev/sde4", 5, previous: true, storedId: "cccccccccccc");
        var row = Assert.Single(summary.Rows());
        Assert.Equal("disk full on /dev/<*>", row.Template);
        Assert.Equal((4L, 1L, 10L, 80L), (row.Count, row.Previous, row.FirstSeen, row.LastSeen));
        // Most frequent first; the earlier window's ids are not the row's events.
        Assert.Equal(["bbbbbbbbbbbb", "aaaaaaaaaaaa"], row.StoredIds);
        Assert.Equal([2L, 1, 0, 1], row.Trend!);
    }
}
