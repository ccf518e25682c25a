using System.Runtime.InteropServices;
using Logwell.Core.Query;
using Logwell.Storage.Encoding;

namespace Logwell.Storage.Segments;

/// <summary>
/// Gathers a segment's term dictionary while its blocks are written: each distinct lowercased token of the message
/// (scope 0) and of each field (scope = field id + 1) that <see cref="FuzzyTerm.BelongsInDictionary"/> admits.
/// </summary>
internal sealed class TermDictionaryBuilder
{
    /// <summary>
    /// The most words a segment's dictionary holds: past it (ids without digits, say) the dictionary is written
    /// incomplete and fuzzy terms read that segment's texts, so the writer's memory stays bounded.
    /// </summary>
    public const int MaxTerms = 500_000;

    private readonly Dictionary<ulong, (int Scope, string Term)> _terms = [];
    private bool _incomplete;

    /// <param name="hash">The token's hash in its scope (<see cref="Logwell.Core.Text.TokenHash"/>): a token is lowercased and kept once.</param>
    public void Add(ulong hash, int scope, ReadOnlySpan<char> token)
    {
        if (!FuzzyTerm.BelongsInDictionary(token))
        {
            return;
        }
        if (_incomplete)
        {
            return;
        }
        ref var entry = ref CollectionsMarshal.GetValueRefOrAddDefault(_terms, hash, out var exists);
        if (!exists)
        {
            entry = (scope, token.ToString().ToLowerInvariant());
            if (_terms.Count > MaxTerms)
            {
                _incomplete = true;
                _terms.Clear();
                _terms.TrimExcess();
            }
        }
    }

    /// <summary>Whether words were left out: the dictionary is written without any.</summary>
    public bool Incomplete => _incomplete;

    /// <summary>Records that some words of the segment are not in the dictionary (a merge input's was incomplete).</summary>
    public void MarkIncomplete()
    {
        _incomplete = true;
        _terms.Clear();
        _terms.TrimExcess();
    }

    /// <summary>
    /// Writes <c>u8 complete</c> (0 when words were left out past <see cref="MaxTerms"/>), <c>varuint scopes</c>, then per scope (ascending) <c>varuint scope, varuint count</c> and its terms in
    /// ordinal order, each as <c>varuint shared-prefix-chars</c> and the rest as a string.
    /// </summary>
    public void Write(ByteWriter output)
    {
        output.WriteByte(_incomplete ? (byte)0 : (byte)1);
        var entries = _terms.Values.ToArray();
        Array.Sort(entries, static (a, b) => a.Scope != b.Scope ? a.Scope.CompareTo(b.Scope) : string.CompareOrdinal(a.Term, b.Term));
        var scopes = 0;
        for (var i = 0; i < entries.Length; i++)
        {
            if (i == 0 || entries[i].Scope != entries[i - 1].Scope)
            {
                scopes++;
            }
        }
        output.WriteVarUInt((ulong)scopes);
        var start = 0;
        while (start < entries.Length)
        {
            var scope = entries[start].Scope;
            var end = start;
            while (end < entries.Length && entries[end].Scope == scope)
            {
                end++;
            }
            output.WriteVarUInt((ulong)scope);
            output.WriteVarUInt((ulong)(end - start));
            var previous = "";
            for (var i = start; i < end; i++)
            {
                var term = entries[i].Term;
                var shared = term.AsSpan().CommonPrefixLength(previous);
                if (shared > 0 && char.IsHighSurrogate(term[shared - 1]))
                {
                    shared--;
                }
                output.WriteVarUInt((ulong)shared);
                output.WriteString(term[shared..]);
                previous = term;
            }
            start = end;
        }
    }
}

/// <summary>
/// A segment's term dictionary, read: the scopes' front-coded term lists, walked for the terms within a fuzzy term's
/// edits without decoding the terms a dead prefix rules out.
/// </summary>
internal sealed class TermDictionary
{
    private readonly byte[] _raw;
    private readonly Dictionary<int, (int Offset, int Count)> _scopes = [];

    public TermDictionary(byte[] raw)
    {
        _raw = raw;
        var reader = new ByteReader(raw);
        Complete = reader.ReadByte() == 1;
        var scopes = (int)reader.ReadVarUInt();
        for (var s = 0; s < scopes; s++)
        {
            var scope = (int)reader.ReadVarUInt();
            var count = (int)reader.ReadVarUInt();
            _scopes[scope] = (reader.Position, count);
            for (var i = 0; i < count; i++)
            {
                reader.ReadVarUInt();
                reader.ReadBytes(reader.ReadLength());
            }
        }
    }

    /// <summary>Whether it holds every word that belongs in it (false: fuzzy terms must read the texts).</summary>
    public bool Complete { get; }

    /// <summary>Every scope that has terms.</summary>
    public IEnumerable<int> Scopes => _scopes.Keys;

    /// <summary>Every term with its scope, for a merge to carry into its output's dictionary.</summary>
    public List<(int Scope, string Term)> All()
    {
        var all = new List<(int Scope, string Term)>();
        foreach (var scope in _scopes.Keys)
        {
            Walk(scope, term =>
            {
                all.Add((scope, term));
                return true;
            });
        }
        return all;
    }

    /// <summary>
    /// The distinct terms of <paramref name="scopes"/> that <paramref name="test"/> accepts; null as soon as they are
    /// more than <paramref name="most"/>.
    /// </summary>
    public HashSet<string>? Matching(IEnumerable<int> scopes, Func<string, bool> test, int most, CancellationToken cancellationToken)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        foreach (var scope in scopes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!Walk(scope, term => !(test(term) && found.Add(term) && found.Count > most)))
            {
                return null;
            }
        }
        return found;
    }

    /// <summary>
    /// Decodes the terms of <paramref name="scope"/> in order and hands each to <paramref name="visit"/>; false when
    /// <paramref name="visit"/> stopped the walk by answering false.
    /// </summary>
    private bool Walk(int scope, Func<string, bool> visit)
    {
        if (!_scopes.TryGetValue(scope, out var list))
        {
            return true;
        }
        var buffer = new char[FuzzyTerm.DictionaryMaxLength];
        var reader = new ByteReader(_raw.AsSpan(list.Offset));
        var valid = 0;
        for (var i = 0; i < list.Count; i++)
        {
            var shared = reader.ReadVarUInt();
            var suffix = reader.ReadBytes(reader.ReadLength());
            if (shared > (ulong)valid || (int)shared + System.Text.Encoding.UTF8.GetCharCount(suffix) > buffer.Length)
            {
                throw new InvalidDataException("malformed term dictionary");
            }
            valid = (int)shared + System.Text.Encoding.UTF8.GetChars(suffix, buffer.AsSpan((int)shared));
            if (!visit(new string(buffer, 0, valid)))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The distinct terms of <paramref name="scopes"/> within <paramref name="maxEdits"/> of <paramref name="term"/>.</summary>
    public HashSet<string> Within(IEnumerable<int> scopes, string term, int maxEdits, CancellationToken cancellationToken)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        var buffer = new char[FuzzyTerm.DictionaryMaxLength];
        foreach (var scope in scopes)
        {
            if (!_scopes.TryGetValue(scope, out var list))
            {
                continue;
            }
            cancellationToken.ThrowIfCancellationRequested();
            var walker = new SortedTermWalker(term, maxEdits);
            var reader = new ByteReader(_raw.AsSpan(list.Offset));
            // The buffer holds the last decoded term; a skipped term shares at least the dead prefix with it, so the
            // characters before that prefix's end stay valid for the terms that follow.
            var valid = 0;
            for (var i = 0; i < list.Count; i++)
            {
                var sharedValue = reader.ReadVarUInt();
                if (sharedValue > FuzzyTerm.DictionaryMaxLength)
                {
                    throw new InvalidDataException("malformed term dictionary");
                }
                var shared = (int)sharedValue;
                var suffix = reader.ReadBytes(reader.ReadLength());
                if (walker.Skips(shared))
                {
                    continue;
                }
                if (shared > valid || shared + System.Text.Encoding.UTF8.GetCharCount(suffix) > buffer.Length)
                {
                    throw new InvalidDataException("malformed term dictionary");
                }
                valid = shared + System.Text.Encoding.UTF8.GetChars(suffix, buffer.AsSpan(shared));
                if (walker.Matches(shared, buffer.AsSpan(0, valid)))
                {
                    found.Add(new string(buffer, 0, valid));
                }
            }
        }
        return found;
    }
}
