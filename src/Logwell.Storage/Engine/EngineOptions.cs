namespace Logwell.Storage.Engine;

/// <summary>Settings of the embedded log engine. Defaults suit a single node; tests shrink them.</summary>
public sealed record EngineOptions
{
    public required string DataDirectory { get; init; }

    /// <summary>Rows per segment block: the unit of reading, checksumming and time pruning.</summary>
    public int BlockRows { get; init; } = 16_384;

    /// <summary>A memory table is frozen and written as segments when it reaches either bound (bytes: its events as it keeps them, encoded).</summary>
    public int MemTableMaxEvents { get; init; } = 131_072;
    public long MemTableMaxBytes { get; init; } = 64L << 20;

    public int FlushCompressionLevel { get; init; } = 3;
    public int MergeCompressionLevel { get; init; } = 6;

    /// <summary>A day partition with this many segments small enough to combine gets them merged.</summary>
    public int MergeMinSegments { get; init; } = 4;
    public long MergeMaxEvents { get; init; } = 8_000_000;

    public long BlockCacheBytes { get; init; } = 256L << 20;

    /// <summary>
    /// Events waiting for the write-ahead log above which an index set reports itself backed up, and ingest answers
    /// 429 rather than queue more in memory.
    /// </summary>
    public long MaxQueuedEvents { get; init; } = 250_000;

    public int DefaultRetentionDays { get; init; } = 7;

    /// <summary>Distinct field names an index set takes; fields under further names go to <c>_overflow</c> (see <see cref="Core.Events.FieldLimit"/>).</summary>
    public int MaxFieldsPerIndexSet { get; init; } = Core.Events.FieldLimit.DefaultMax;

    public TimeSpan RetentionInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Matches counted exactly before a search may stop early and report a lower bound.</summary>
    public int TrackTotalHitsUpTo { get; init; } = 10_000;

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            throw new ArgumentException("the data directory must be set");
        }
        if (BlockRows is < 16 or > 1_000_000)
        {
            throw new ArgumentException($"BlockRows must be between 16 and 1000000, not {BlockRows}");
        }
        if (MemTableMaxEvents < 1 || MemTableMaxBytes < 1024)
        {
            throw new ArgumentException("memory table bounds are too small");
        }
        if (FlushCompressionLevel is < 1 or > 22 || MergeCompressionLevel is < 1 or > 22)
        {
            throw new ArgumentException("zstd compression levels go from 1 to 22");
        }
        if (RetentionInterval < TimeSpan.FromSeconds(1) || RetentionInterval > TimeSpan.FromDays(1))
        {
            throw new ArgumentException($"RetentionInterval must be between 1 second and 1 day, not {RetentionInterval}");
        }
        if (MaxFieldsPerIndexSet is < 1 or > 100_000)
        {
            throw new ArgumentException($"MaxFieldsPerIndexSet must be between 1 and 100000, not {MaxFieldsPerIndexSet}");
        }
        if (MaxQueuedEvents < 1)
        {
            throw new ArgumentException("MaxQueuedEvents must be at least 1");
        }
        if (DefaultRetentionDays < 1)
        {
            throw new ArgumentException("DefaultRetentionDays must be at least 1");
        }
    }
}
