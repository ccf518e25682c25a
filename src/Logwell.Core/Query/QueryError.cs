namespace Logwell.Core.Query;

/// <summary>A query the user can fix: where it went wrong (0-based character position) and what was expected.</summary>
public sealed record QueryError(int Position, string Message, string Expected)
{
    public override string ToString() => $"{Message} at position {Position}: expected {Expected}";
}
