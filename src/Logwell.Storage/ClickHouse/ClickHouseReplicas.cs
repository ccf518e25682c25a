using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Logwell.Storage.ClickHouse;

/// <summary>
/// The ClickHouse servers of one log store: replicas of the same tables (or one server). Statements go to one replica
/// and move on to the next when it cannot take them (it does not answer, or has lost ZooKeeper and turned read-only);
/// the replica that last answered stays the first choice, so a node's reads follow its writes. DDL goes to every
/// replica, since 18.16 has no distributed DDL without a cluster definition; one that misses it is brought up to date
/// by the catalog's reconciliation.
/// </summary>
internal sealed class ClickHouseReplicas : IDisposable
{
    private readonly ClickHouseHttp[] _clients;
    private readonly Uri[] _endpoints;
    private int _preferred;

    public ClickHouseReplicas(IReadOnlyList<Uri> endpoints, string user, string password, string database, TimeSpan timeout)
    {
        _endpoints = [.. endpoints];
        _clients = [.. endpoints.Select(e => new ClickHouseHttp(e, user, password, database, timeout: timeout))];
    }

    public int Count => _clients.Length;

    public IReadOnlyList<Uri> Endpoints => _endpoints;

    public ClickHouseHttp this[int replica] => _clients[replica];

    /// <summary>
    /// Whether a replica cannot take statements now, so the next one should: it does not answer, or answers that it
    /// has no ZooKeeper (a replicated table is then read-only there).
    /// </summary>
    public static bool IsReplicaDown(Exception e) => e switch
    {
        HttpRequestException => true,
        TaskCanceledException => true,
        IOException => true,
        // TABLE_IS_READ_ONLY, NO_ZOOKEEPER, KEEPER_EXCEPTION, ALL_CONNECTION_TRIES_FAILED, TOO_FEW_LIVE_REPLICAS.
        ClickHouseException c => c.Code is 242 or 225 or 999 or 279 or 285,
        _ => false,
    };

    /// <summary>Runs <paramref name="work"/> on the preferred replica, then on the others in turn while they are down.</summary>
    public async Task<T> OnAnyAsync<T>(Func<ClickHouseHttp, Task<T>> work)
    {
        var start = Volatile.Read(ref _preferred);
        Exception? last = null;
        for (var i = 0; i < _clients.Length; i++)
        {
            var replica = (start + i) % _clients.Length;
            try
            {
                var result = await work(_clients[replica]).ConfigureAwait(false);
                Volatile.Write(ref _preferred, replica);
                return result;
            }
            catch (Exception e) when (IsReplicaDown(e) && i < _clients.Length - 1)
            {
                last = e;
            }
        }
        throw last ?? new InvalidOperationException("no ClickHouse server is configured");
    }

    public Task<string> ExecuteAsync(string sql, IReadOnlyDictionary<string, string>? settings = null, CancellationToken cancellationToken = default) =>
        OnAnyAsync(client => client.ExecuteAsync(sql, settings, cancellationToken));

    /// <summary>The rows of a SELECT from one replica: it moves on to the next only before the first row arrived.</summary>
    public async IAsyncEnumerable<JsonElement> QueryAsync(string sql, IReadOnlyDictionary<string, string>? settings = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (enumerator, has) = await OnAnyAsync(async client =>
        {
            var rows = client.QueryAsync(sql, settings, cancellationToken).GetAsyncEnumerator(cancellationToken);
            try
            {
                return (rows, await rows.MoveNextAsync().ConfigureAwait(false));
            }
            catch
            {
                await rows.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }).ConfigureAwait(false);
        await using (enumerator.ConfigureAwait(false))
        {
            while (has)
            {
                yield return enumerator.Current;
                has = await enumerator.MoveNextAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Runs a statement on every replica; answers which failed and why. Throws when none took it (the statement's
    /// own error, or the replicas' when none answers).
    /// </summary>
    public async Task<IReadOnlyList<(Uri Endpoint, Exception Error)>> OnEachAsync(string sql, CancellationToken cancellationToken = default)
    {
        var failed = new List<(Uri, Exception)>();
        for (var replica = 0; replica < _clients.Length; replica++)
        {
            try
            {
                await _clients[replica].ExecuteAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsReplicaDown(e))
            {
                failed.Add((_endpoints[replica], e));
            }
        }
        if (failed.Count == _clients.Length)
        {
            throw failed[0].Item2;
        }
        return failed;
    }

    public void Dispose()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }
    }
}
