using Logwell.Core.Query;

namespace Logwell.Tests;

public sealed class PipelineParserTests
{
    private static Pipeline Parse(string text) => PipelineParser.TryParse(text, out var pipeline, out var error) ? pipeline : throw new ArgumentException(error!.ToString());

    [Fact]
    public void StagesAfterTheQuery()
    {
        var pipeline = Parse("level:ERROR || \"a | b\" | stats count() as n, avg(latency), p95(latency) by host, service | sort by n desc | head 5");
        Assert.IsType<OrNode>(pipeline.Query);
        Assert.Equal(3, pipeline.Stages.Count);
        var stats = Assert.IsType<StatsStage>(pipeline.Stages[0]);
        Assert.Equal([new Aggregation("count", null, "n"), new Aggregation("avg", "latency", "avg(latency)"), new Aggregation("percentile", "latency", "p95(latency)", 95)], stats.Aggregations);
        Assert.Equal(["host", "service"], stats.By);
        Assert.Equal(new SortStage("n", true), pipeline.Stages[1]);
        Assert.Equal(new HeadStage(5), pipeline.Stages[2]);
    }

    [Fact]
    public void TimechartTopRareAndFields()
    {
        Assert.Equal(new TimechartStage(5 * TimeSpan.TicksPerMinute, new Aggregation("count", null, "count()"), "host"), Parse("* | timechart span=5m count() by host").Stages[0]);
        Assert.Equal(new TimechartStage(0, new Aggregation("count", null, "count()"), null), Parse("| timechart").Stages[0]);
        Assert.Equal(new TopStage(3, "host", false), Parse("error | top 3 host").Stages[0]);
        Assert.Equal(new TopStage(10, "path", true), Parse("error | rare path").Stages[0]);
        Assert.Equal(new PatternsStage(50, 0), Parse("error | patterns").Stages[0]);
        Assert.Equal(new PatternsStage(20, TimeSpan.TicksPerDay), Parse("error | patterns 20 compare=1d").Stages[0]);
        Assert.Equal(new PatternsStage(50, 7 * TimeSpan.TicksPerDay), Parse("* | patterns compare=1w").Stages[0]);
        Assert.Equal(["t", "host"], Assert.IsType<FieldsStage>(Parse("error | fields t, host").Stages[0]).Columns);
        // A slash inside a regular expression and a pipe inside quotes are not stages.
        Assert.Empty(Parse("path:/a|b/ \"x|y\"").Stages);
    }

    [Fact]
    public void WhereConditions()
    {
        var where = Assert.IsType<WhereStage>(Parse("* | stats count() as n by host | where n >= 10 AND NOT (host = \"web 1\" OR host == db-2)").Stages[1]);
        var row = new Dictionary<string, object?> { ["n"] = 12L, ["host"] = "web-3" };
        Assert.True(where.Condition.Matches(c => row.GetValueOrDefault(c)));
        row["host"] = "db-2";
        Assert.False(where.Condition.Matches(c => row.GetValueOrDefault(c)));
        row["host"] = "web 1";
        Assert.False(where.Condition.Matches(c => row.GetValueOrDefault(c)));
        row["host"] = "web-3";
        row["n"] = 9.5;
        Assert.False(where.Condition.Matches(c => row.GetValueOrDefault(c)));
        // A missing column makes a comparison false.
        Assert.False(Assert.IsType<WhereStage>(Parse("| where nothere != 1").Stages[0]).Condition.Matches(_ => null));
    }

    [Theory]
    [InlineData("error | where n >", 17, "a value")]
    [InlineData("error | where n 5", 16, "=, !=, >, >=, < or <=")]
    [InlineData("error | where (n > 5", 20, "')'")]
    [InlineData("error | where n > 5 m", 20, "AND, OR or the end of the condition")]
    [InlineData("error | frobnicate", 8, "stats, timechart, top, rare, patterns, fields, sort, head or where")]
    [InlineData("error |", 7, "stats, timechart, top, rare, patterns, fields, sort, head or where")]
    [InlineData("error | stats avg()", 8, "avg(latency)")]
    [InlineData("error | stats p100(x)", 8, "p1 to p99")]
    [InlineData("error | head 5 | stats count()", 16, "sort, head, fields or where after the first stage")]
    [InlineData("error | timechart span=7q count()", 8, "span=auto or a number with s, m, h or d, such as span=5m")]
    [InlineData("(error | stats count()", 7, "')'")]
    [InlineData("error | patterns 0", 8, "patterns 20 compare=1d")]
    [InlineData("error | patterns many", 8, "patterns 20 compare=1d")]
    [InlineData("error | patterns 10 20", 8, "patterns 20 compare=1d")]
    [InlineData("error | patterns compare=1d compare=1w", 8, "patterns 20 compare=1d")]
    [InlineData("error | patterns compare=yesterday", 8, "compare=1d or compare=1w: the same window that long before")]
    [InlineData("error | head 5 | patterns", 16, "sort, head, fields or where after the first stage")]
    public void BadStagesReportTheirPosition(string text, int position, string expected)
    {
        Assert.False(PipelineParser.TryParse(text, out _, out var error));
        Assert.Equal(position, error!.Position);
        Assert.Equal(expected, error.Expected);
    }
}
