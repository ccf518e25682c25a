using Logwell.Core.Events;

namespace Logwell.Storage.Segments;

/// <summary>
/// Merges segments of one day into one, in (timestamp, seq) order, a block at a time where it can: a block whose rows
/// all come before every other input's next row is copied as stored (see <see cref="SegmentWriter.CopyBlock"/>), so
/// segments flushed one after another from a stream in time order are merged without decoding a row. Only where
/// inputs overlap are blocks decoded and their rows interleaved and written anew.
/// </summary>
internal static class SegmentMerge
{
    /// <summary>What a merge did: blocks copied as stored, blocks decoded and rows written anew.</summary>
    public readonly record struct Counts(int CopiedBlocks, int DecodedBlocks);

    private sealed class Input(Segment segment)
    {
        public Segment Segment { get; } = segment;

        /// <summary>The next block to read; past the last when the input is done.</summary>
        public int Block { get; set; }

        /// <summary>The decoded rows of <see cref="Block"/>, or null while the block is still whole on disk.</summary>
        public LogEvent[]? Rows { get; set; }
        public int Row { get; set; }

        public bool Done => Block >= Segment.Blocks.Length;

        /// <summary>
        /// A position no row left in this input comes before: the next row's own once the block is decoded, else the
        /// block's first timestamp with any sequence number.
        /// </summary>
        public EventPosition Head => Rows is { } rows
            ? new EventPosition(rows[Row].Timestamp, rows[Row].Seq)
            : new EventPosition(Segment.Blocks[Block].MinTime, long.MinValue);

        public void NextBlock()
        {
            Rows = null;
            Row = 0;
            Block++;
        }
    }

    /// <summary>
    /// Writes every row of <paramref name="segments"/> to <paramref name="writer"/> in order, ending each block the
    /// merge writes itself at about <paramref name="blockRows"/> rows: a short block (the last of a flush) is joined
    /// to the rows before or after it, up to one and a half times that.
    /// </summary>
    public static Counts Write(IReadOnlyList<Segment> segments, SegmentWriter writer, int blockRows, CancellationToken cancellationToken)
    {
        foreach (var segment in segments)
        {
            writer.AddTerms(segment);
        }
        var inputs = segments.Select(s => new Input(s)).Where(i => !i.Done).ToList();
        var half = Math.Max(1, blockRows / 2);
        var buffer = Array.Empty<byte>();
        var copied = 0;
        var decoded = 0;
        var written = 0L;
        while (inputs.Count > 0)
        {
            var next = inputs[0];
            var head = next.Head;
            for (var i = 1; i < inputs.Count; i++)
            {
                var other = inputs[i].Head;
                if (other < head)
                {
                    (next, head) = (inputs[i], other);
                }
            }
            if (next.Rows is null)
            {
                // A stop does not wait for a long merge: the unfinished output is deleted, the inputs stay.
                cancellationToken.ThrowIfCancellationRequested();
                var meta = next.Segment.Blocks[next.Block];
                var alone = next.Segment.Version == SegmentFormat.Version && PrecedesOthers(meta, next, inputs);
                // Pending rows end their block before this one is copied, or when joining them would pass 1.5 times
                // the usual rows: no block grows past that, merge after merge.
                if (alone && (writer.PendingRows >= half || writer.PendingRows + meta.Rows > blockRows + half))
                {
                    writer.EndBlock();
                }
                if (alone && writer.PendingRows == 0 && meta.Rows >= half)
                {
                    writer.CopyBlock(next.Segment, next.Block, ref buffer);
                    copied++;
                    next.NextBlock();
                }
                else if (alone)
                {
                    // A short block, or few rows pending: the block's rows join them, in one block of at most 1.5
                    // times the usual rows, ended once it holds at least half of them.
                    foreach (var evt in next.Segment.ReadBlock(next.Block))
                    {
                        writer.Append(evt);
                    }
                    decoded++;
                    if (writer.PendingRows >= half)
                    {
                        writer.EndBlock();
                    }
                    next.NextBlock();
                }
                else
                {
                    next.Rows = next.Segment.ReadBlock(next.Block);
                    decoded++;
                }
                if (next.Done)
                {
                    inputs.Remove(next);
                }
                continue;
            }
            // Inputs overlap here: the smallest row of all goes next (no other input's next row comes before it).
            writer.Append(next.Rows[next.Row]);
            if (writer.PendingRows >= blockRows)
            {
                writer.EndBlock();
            }
            if (++written % 16_384 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
            if (++next.Row == next.Rows.Length)
            {
                next.NextBlock();
                if (next.Done)
                {
                    inputs.Remove(next);
                }
            }
        }
        writer.EndBlock();
        return new Counts(copied, decoded);
    }

    /// <summary>Whether every row of <paramref name="block"/> comes before every row the other inputs have left.</summary>
    private static bool PrecedesOthers(BlockMeta block, Input owner, List<Input> inputs)
    {
        // The block's last row is at (MaxTime, some seq up to MaxSeq).
        var last = new EventPosition(block.MaxTime, block.MaxSeq);
        foreach (var input in inputs)
        {
            if (!ReferenceEquals(input, owner) && input.Head <= last)
            {
                return false;
            }
        }
        return true;
    }
}
