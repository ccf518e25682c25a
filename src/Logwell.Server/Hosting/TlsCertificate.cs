using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Logwell.Server.Hosting;

/// <summary>
/// The node's TLS certificate: a PEM certificate file (the leaf first, then any intermediates, as a CA's
/// <c>fullchain.pem</c>) and its PEM private key, served on the HTTP listeners and syslog over TLS. The files are
/// looked at again every <see cref="CheckInterval"/>: a renewed certificate is served to new connections without a
/// restart, and a renewal that cannot be read keeps the one in use (and says why in the log).
/// </summary>
public sealed class TlsCertificate
{
    /// <summary>How often the files' times are compared.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(10);

    private readonly string _certificatePath;
    private readonly string _keyPath;
    private readonly TimeProvider _time;
    private readonly Lock _reload = new();
    private (DateTime Certificate, DateTime Key) _stamps;
    private long _checkedAt;
    private SslStreamCertificateContext _context;

    /// <exception cref="ArgumentException">The files cannot be read, or the key is not the certificate's.</exception>
    public TlsCertificate(string certificatePath, string keyPath, TimeProvider time)
    {
        _certificatePath = Path.GetFullPath(certificatePath);
        _keyPath = Path.GetFullPath(keyPath);
        _time = time;
        _stamps = Stamps();
        (_context, Leaf) = Load(_certificatePath, _keyPath);
        _checkedAt = time.GetTimestamp();
    }

    /// <summary>Where renewals are reported (set once the node's logging exists).</summary>
    public ILogger? Logger { get; set; }

    /// <summary>Says so when the certificate in use has expired or is not valid yet.</summary>
    public string? Problem(DateTimeOffset now) =>
        Leaf.NotAfter.ToUniversalTime() < now.UtcDateTime ? $"the TLS certificate {Leaf.Subject} expired on {Leaf.NotAfter.ToUniversalTime():u}: clients will refuse it"
        : Leaf.NotBefore.ToUniversalTime() > now.UtcDateTime ? $"the TLS certificate {Leaf.Subject} is not valid before {Leaf.NotBefore.ToUniversalTime():u}"
        : null;

    /// <summary>The certificate in use (without intermediates).</summary>
    public X509Certificate2 Leaf { get; private set; }

    /// <summary>The certificate and its intermediates as served, read again when the files changed.</summary>
    public SslStreamCertificateContext Context
    {
        get
        {
            if (_time.GetElapsedTime(Volatile.Read(ref _checkedAt)) < CheckInterval)
            {
                return _context;
            }
            lock (_reload)
            {
                if (_time.GetElapsedTime(_checkedAt) >= CheckInterval)
                {
                    _checkedAt = _time.GetTimestamp();
                    var stamps = Stamps();
                    if (stamps != _stamps)
                    {
                        try
                        {
                            (_context, Leaf) = Load(_certificatePath, _keyPath);
                            _stamps = stamps;
                            Logger?.LogInformation("Serving the renewed TLS certificate {Subject}, valid until {NotAfter:u}", Leaf.Subject, Leaf.NotAfter.ToUniversalTime());
                        }
                        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException or CryptographicException)
                        {
                            // A renewal caught half written, or a wrong pair: keep serving the one that works.
                            Logger?.LogError("The TLS certificate files changed but cannot be used, so the previous certificate is still served: {Reason}", e.Message);
                        }
                    }
                }
                return _context;
            }
        }
    }

    /// <summary>Server options for one connection: the current certificate and its chain.</summary>
    public SslServerAuthenticationOptions ServerOptions() => new()
    {
        ServerCertificateContext = Context,
        ClientCertificateRequired = false,
        EnabledSslProtocols = System.Security.Authentication.SslProtocols.None,
    };

    // A file that is missing for a moment (replaced by a rename) reads as the year 1601: a change, then a failed load.
    private (DateTime, DateTime) Stamps() => (File.GetLastWriteTimeUtc(_certificatePath), File.GetLastWriteTimeUtc(_keyPath));

    private static (SslStreamCertificateContext, X509Certificate2) Load(string certificatePath, string keyPath)
    {
        if (!File.Exists(certificatePath))
        {
            throw new ArgumentException($"the TLS certificate file {certificatePath} does not exist");
        }
        if (!File.Exists(keyPath))
        {
            throw new ArgumentException($"the TLS key file {keyPath} does not exist");
        }
        X509Certificate2 leaf;
        var chain = new X509Certificate2Collection();
        try
        {
            leaf = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
            chain.ImportFromPemFile(certificatePath);
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException($"cannot use the TLS certificate {certificatePath} with the key {keyPath} (both PEM; the key must be the certificate's): {e.Message}", e);
        }
        // The first certificate of the file is the leaf; the others are sent with it as its chain.
        var intermediates = new X509Certificate2Collection();
        foreach (var certificate in chain.Skip(1))
        {
            intermediates.Add(certificate);
        }
        return (SslStreamCertificateContext.Create(leaf, intermediates, offline: true), leaf);
    }
}
