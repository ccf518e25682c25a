using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Threading.Channels;
using Logwell.Storage;
using Logwell.Core.Events;
using Logwell.Core.Ingest;
using Logwell.Storage.Engine;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Hosting;

/// <summary>
/// Syslog over TCP (octet-counted or newline-framed, RFC 6587), over TLS (RFC 5425: the same framing inside TLS, with
/// the node's certificate) and UDP (a message per datagram), when <see cref="LogwellOptions.SyslogTcpPort"/>,
/// <see cref="LogwellOptions.SyslogTlsPort"/> or <see cref="LogwellOptions.SyslogUdpPort"/> is set. Messages go to
/// <see cref="LogwellOptions.SyslogIndexSet"/> in batches. A message longer than
/// <see cref="LogwellOptions.SyslogMaxMessageBytes"/> is cut there and marked <c>truncated</c>. When the store falls
/// behind, TCP senders are slowed by not reading; UDP datagrams that find the queue full are counted and logged.
/// </summary>
internal sealed class SyslogListener(IOptions<LogwellOptions> options, ILogStore logStore, TimeProvider time, ILogger<SyslogListener> logger, TlsCertificate? certificate = null) : IHostedService, IAsyncDisposable
{
    /// <summary>How long a TLS sender has to finish its handshake.</summary>
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(15);

    private readonly LogwellOptions _options = options.Value;
    private readonly Channel<LogEvent> _queue = Channel.CreateBounded<LogEvent>(new BoundedChannelOptions(50_000) { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _tasks = [];
    private TcpListener? _tcp;
    private TcpListener? _tls;
    private UdpClient? _udp;
    private long _dropped;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.SyslogTcpPort == 0 && _options.SyslogUdpPort == 0 && _options.SyslogTlsPort == 0)
        {
            return Task.CompletedTask;
        }
        var address = IPAddress.Parse(_options.SyslogAddress);
        // Bound before start-up completes, so a sender may connect as soon as the node says it listens.
        if (_options.SyslogTcpPort != 0)
        {
            _tcp = new TcpListener(address, _options.SyslogTcpPort);
            _tcp.Start();
            _tasks.Add(AcceptAsync(_tcp, tls: false));
        }
        if (_options.SyslogTlsPort != 0)
        {
            _tls = new TcpListener(address, _options.SyslogTlsPort);
            _tls.Start();
            _tasks.Add(AcceptAsync(_tls, tls: true));
        }
        if (_options.SyslogUdpPort != 0)
        {
            _udp = new UdpClient(new IPEndPoint(address, _options.SyslogUdpPort));
            _tasks.Add(ReceiveAsync(_udp));
        }
        _tasks.Add(WriteAsync());
        logger.LogInformation("Syslog on {Address} tcp {Tcp} tls {Tls} udp {Udp} into index set {IndexSet}", address, _options.SyslogTcpPort, _options.SyslogTlsPort, _options.SyslogUdpPort, _options.SyslogIndexSet);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_tasks.Count == 0)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        _tcp?.Stop();
        _tls?.Stop();
        _udp?.Dispose();
        _queue.Writer.TryComplete();
        try
        {
            await Task.WhenAll(_tasks).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task AcceptAsync(TcpListener listener, bool tls)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = Task.Run(() => ReadConnectionAsync(socket, tls));
        }
    }

    /// <summary>One TCP sender: octet-counted frames (<c>LEN SP MSG</c>) or lines, inside TLS on the TLS port.</summary>
    private async Task ReadConnectionAsync(Socket socket, bool tls)
    {
        using var _ = socket;
        Stream stream = new NetworkStream(socket, ownsSocket: false);
        if (tls)
        {
            var secure = new SslStream(stream, leaveInnerStreamOpen: false);
            try
            {
                using var timeout = new CancellationTokenSource(HandshakeTimeout, time);
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, timeout.Token);
                await secure.AuthenticateAsServerAsync(certificate!.ServerOptions(), handshake.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException or SocketException)
            {
                logger.LogWarning("A syslog TLS handshake from {Remote} failed: {Reason}", socket.RemoteEndPoint, e.Message);
                await secure.DisposeAsync().ConfigureAwait(false);
                return;
            }
            stream = secure;
        }
        await using var __ = stream;
        var reader = PipeReader.Create(stream);
        var max = _options.SyslogMaxMessageBytes;
        var state = new FrameState();
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_stopping.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (TryReadFrame(ref buffer, max, result.IsCompleted, state, out var frame, out var truncated))
                {
                    if (frame.Length > 0)
                    {
                        await _queue.Writer.WriteAsync(Parse(frame, truncated), _stopping.Token).ConfigureAwait(false);
                    }
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ChannelClosedException)
        {
            // The sender or the node went away.
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A TCP connection's framing, fixed by its first byte (a digit: octet counting, as RFC 6587 senders that count do
    /// from their first frame), and what it still has to skip of a message that was cut at the limit.
    /// </summary>
    internal sealed class FrameState
    {
        public bool? OctetCounting { get; set; }
        public long SkipBytes { get; set; }
        public bool SkipLine { get; set; }
    }

    /// <summary>
    /// Takes one frame off the buffer. A frame over <paramref name="max"/> bytes is cut to it and the rest of it is
    /// skipped as it arrives, so no connection buffers more than about one message.
    /// </summary>
    internal static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int max, bool ended, FrameState state, out byte[] frame, out bool truncated)
    {
        frame = [];
        truncated = false;
        if (state.SkipBytes > 0)
        {
            var skip = Math.Min(state.SkipBytes, buffer.Length);
            buffer = buffer.Slice(skip);
            state.SkipBytes -= skip;
            if (state.SkipBytes > 0)
            {
                return false;
            }
        }
        var reader = new SequenceReader<byte>(buffer);
        if (state.SkipLine)
        {
            if (!reader.TryAdvanceTo((byte)'\n'))
            {
                buffer = buffer.Slice(buffer.End);
                return false;
            }
            state.SkipLine = false;
            buffer = buffer.Slice(reader.Position);
        }
        // Newlines between frames are not messages.
        while (reader.TryPeek(out var first) && first is (byte)'\n' or (byte)'\r' or 0)
        {
            reader.Advance(1);
        }
        if (!reader.TryPeek(out var lead))
        {
            buffer = buffer.Slice(reader.Position);
            return false;
        }
        state.OctetCounting ??= lead is >= (byte)'1' and <= (byte)'9';
        if (state.OctetCounting == true && lead is >= (byte)'1' and <= (byte)'9')
        {
            // Octet counting: digits, a space, then exactly that many bytes.
            var start = reader.Position;
            long length = 0;
            var digits = 0;
            while (reader.TryPeek(out var d) && d is >= (byte)'0' and <= (byte)'9' && digits < 10)
            {
                length = length * 10 + (d - '0');
                digits++;
                reader.Advance(1);
            }
            if (reader.TryPeek(out var space) && space == (byte)' ')
            {
                reader.Advance(1);
                var kept = Math.Min(length, max);
                if (reader.Remaining < kept)
                {
                    buffer = buffer.Slice(start);
                    return false;
                }
                var body = buffer.Slice(reader.Position, kept);
                frame = body.ToArray();
                truncated = length > max;
                state.SkipBytes = length - kept;
                buffer = buffer.Slice(body.End);
                return true;
            }
            if (reader.Remaining == 0 && !ended)
            {
                // The count may go on in the next read.
                buffer = buffer.Slice(start);
                return false;
            }
            // Digits without a space: a line, after all.
            reader = new SequenceReader<byte>(buffer.Slice(start));
        }
        var lineStart = reader.Position;
        if (reader.TryAdvanceTo((byte)'\n', advancePastDelimiter: false))
        {
            var line = buffer.Slice(lineStart, reader.Position);
            truncated = line.Length > max;
            frame = line.Slice(0, Math.Min(line.Length, max)).ToArray();
            reader.Advance(1);
            buffer = buffer.Slice(reader.Position);
            return true;
        }
        var rest = buffer.Slice(lineStart);
        if (ended && rest.Length > 0)
        {
            truncated = rest.Length > max;
            frame = rest.Slice(0, Math.Min(rest.Length, max)).ToArray();
            buffer = buffer.Slice(buffer.End);
            return true;
        }
        if (rest.Length > max)
        {
            // No newline within the limit: keep the first part, skip the rest of the line.
            frame = rest.Slice(0, max).ToArray();
            truncated = true;
            state.SkipLine = true;
            buffer = buffer.Slice(rest.GetPosition(max));
            return true;
        }
        buffer = rest;
        return false;
    }

    private async Task ReceiveAsync(UdpClient udp)
    {
        var max = _options.SyslogMaxMessageBytes;
        while (!_stopping.IsCancellationRequested)
        {
            UdpReceiveResult datagram;
            try
            {
                datagram = await udp.ReceiveAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            var bytes = datagram.Buffer;
            var evt = Parse(bytes.Length > max ? bytes[..max] : bytes, bytes.Length > max);
            if (!_queue.Writer.TryWrite(evt))
            {
                var dropped = Interlocked.Increment(ref _dropped);
                if (dropped == 1 || dropped % 10_000 == 0)
                {
                    logger.LogWarning("Syslog: {Dropped} UDP messages dropped so far: index set {IndexSet} cannot keep up (TCP senders are slowed instead)", dropped, _options.SyslogIndexSet);
                }
            }
        }
    }

    private LogEvent Parse(byte[] frame, bool truncated)
    {
        var evt = SyslogParser.Parse(Encoding.UTF8.GetString(frame), time.GetUtcNow(), time.LocalTimeZone);
        return truncated ? new LogEvent(evt.Timestamp, evt.Message, [.. evt.Fields, new Field("truncated", FieldValue.True)]) : evt;
    }

    /// <summary>Appends queued messages in batches of up to 10,000.</summary>
    private async Task WriteAsync()
    {
        var store = await StoreRetry.UntilDoneAsync(() => logStore.GetOrCreateAsync(_options.SyslogIndexSet), time, logger, $"Opening index set {_options.SyslogIndexSet} for syslog", _stopping.Token).ConfigureAwait(false);
        var reader = _queue.Reader;
        var batch = new List<LogEvent>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (batch.Count < 10_000 && reader.TryRead(out var evt))
            {
                batch.Add(evt);
            }
            try
            {
                await store.AppendAsync(batch, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or ChannelClosedException)
            {
                logger.LogError(e, "Syslog: {Count} messages could not be stored in index set {IndexSet}", batch.Count, _options.SyslogIndexSet);
            }
            batch = [];
        }
    }

    private int _disposed;

    /// <summary>Idempotent: the container disposes the listener once as itself and once as a hosted service.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        _tcp?.Stop();
        _tls?.Stop();
        _udp?.Dispose();
        _stopping.Dispose();
    }
}
