using System.Buffers;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace Logwell.Core.Text;

/// <summary>
/// Hashes of lowercased tokens, for the token index. A token is hashed alone (the message) and scoped to its field.
/// The 32-bit hash (the low half of the 64-bit one) names blocks, where a collision only makes the index name a block
/// that the exact match then rejects; the 64-bit hash keys a block's row postings.
/// </summary>
public static class TokenHash
{
    private const char FieldSeparator = '\u0001';

    public static uint Of(ReadOnlySpan<char> token) => (uint)Hash(ReadOnlySpan<char>.Empty, token);

    public static uint Of(string field, ReadOnlySpan<char> token) => (uint)Hash(field, token);

    public static ulong Of64(ReadOnlySpan<char> token) => Hash(ReadOnlySpan<char>.Empty, token);

    public static ulong Of64(string field, ReadOnlySpan<char> token) => Hash(field, token);

    private static ulong Hash(ReadOnlySpan<char> field, ReadOnlySpan<char> token)
    {
        var length = token.Length + (field.IsEmpty ? 0 : field.Length + 1);
        char[]? rented = null;
        var buffer = length <= 256 ? stackalloc char[length] : (rented = ArrayPool<char>.Shared.Rent(length)).AsSpan(0, length);
        var at = 0;
        if (!field.IsEmpty)
        {
            field.CopyTo(buffer);
            buffer[field.Length] = FieldSeparator;
            at = field.Length + 1;
        }
        token.ToLowerInvariant(buffer[at..]);
        var hash = XxHash3.HashToUInt64(MemoryMarshal.AsBytes(buffer));
        if (rented is not null)
        {
            ArrayPool<char>.Shared.Return(rented);
        }
        return hash;
    }
}
