namespace Logwell.Bench.Systems;

/// <summary>A system under test: it loads the raw corpus and answers the named queries with a hit count.</summary>
internal interface IBenchSystem : IAsyncDisposable
{
    /// <summary>Loads the whole corpus; returns once all of it is durable and searchable.</summary>
    Task IngestAsync(Corpus corpus);

    /// <summary>The number of events the named query matches; null when the system cannot express it.</summary>
    Task<long?> QueryAsync(string name, QueryParameters p);

    /// <summary>
    /// Bytes of live data as the system itself reports them, where files on disk would overstate it (parts a merge
    /// replaced but has not deleted yet); null to measure the directory.
    /// </summary>
    Task<long?> LiveDataBytesAsync() => Task.FromResult<long?>(null);
}

/// <summary>Reads the raw corpus in batches of whole lines.</summary>
internal static class CorpusReader
{
    public static IEnumerable<(byte[] Buffer, int Length, int Lines)> Batches(string path, int maxBytes)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        var buffer = new byte[maxBytes + (1 << 20)];
        var filled = 0;
        while (true)
        {
            var read = stream.Read(buffer, filled, buffer.Length - filled);
            filled += read;
            if (filled == 0)
            {
                yield break;
            }
            var cut = read == 0 ? filled : Array.LastIndexOf(buffer, (byte)'\n', Math.Min(filled, maxBytes) - 1) + 1;
            if (cut <= 0)
            {
                cut = filled;
            }
            var batch = buffer.AsSpan(0, cut).ToArray();
            var lines = batch.AsSpan().Count((byte)'\n');
            yield return (batch, cut, lines);
            Array.Copy(buffer, cut, buffer, 0, filled - cut);
            filled -= cut;
            if (read == 0 && filled == 0)
            {
                yield break;
            }
        }
    }

    public static IEnumerable<string> Lines(string path)
    {
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, false, 1 << 20);
        while (reader.ReadLine() is { } line)
        {
            yield return line;
        }
    }
}
