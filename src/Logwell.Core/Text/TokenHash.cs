using System.Buffers;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace Logwell.Core.Text;

/// <summary>
/// 64-bit hashes of lowercased tokens, for the token filters and row postings. A message token is hashed alone, a
/// field token scoped to its field.
/// </summary>
public static class TokenHash
{
    private const char FieldSeparator = '\u0001';

    public static ulong Of(ReadOnlySpan<char> token) => Hash(ReadOnlySpan<char>.Empty, token);

    public static ulong Of(string field, ReadOnlySpan<char> token) => Hash(field, token);

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
