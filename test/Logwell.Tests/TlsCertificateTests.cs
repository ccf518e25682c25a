using Logwell.Server.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace Logwell.Tests;

/// <summary>The node's TLS files: read at start, read again when they change, a bad renewal kept out; and the settings that go with them.</summary>
public sealed class TlsCertificateTests
{
    [Fact]
    public void ARenewedCertificateIsServedAfterTheNextCheckAndABrokenRenewalKeepsTheOldOne()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var first = TestCertificates.Create(dir.Path, "first");
        var certificate = new TlsCertificate(first.ChainFile, first.KeyFile, time);
        Assert.Equal("CN=first", certificate.Context.TargetCertificate.Subject);
        // The intermediate goes with it.
        Assert.Single(certificate.Context.IntermediateCertificates);
        Assert.Null(certificate.Problem(time.GetUtcNow()));

        // A renewal: the new pair replaces the files; served once the interval has passed, not before.
        var renewed = TestCertificates.Create(Path.Combine(dir.Path, "renewed"), "second");
        File.Copy(renewed.ChainFile, first.ChainFile, overwrite: true);
        File.Copy(renewed.KeyFile, first.KeyFile, overwrite: true);
        File.SetLastWriteTimeUtc(first.ChainFile, DateTime.UtcNow.AddSeconds(5));
        Assert.Equal("CN=first", certificate.Context.TargetCertificate.Subject);
        time.Advance(TlsCertificate.CheckInterval);
        Assert.Equal("CN=second", certificate.Context.TargetCertificate.Subject);

        // A key that is not the certificate's (a renewal caught half done): the working pair stays.
        var other = TestCertificates.Create(Path.Combine(dir.Path, "other"), "third");
        File.Copy(other.KeyFile, first.KeyFile, overwrite: true);
        File.SetLastWriteTimeUtc(first.KeyFile, DateTime.UtcNow.AddSeconds(10));
        time.Advance(TlsCertificate.CheckInterval);
        Assert.Equal("CN=second", certificate.Context.TargetCertificate.Subject);

        Assert.Contains("expired", certificate.Problem(time.GetUtcNow().AddDays(200)), StringComparison.Ordinal);
    }

    [Fact]
    public void FilesThatCannotServeAreRefusedAtStartWithTheReason()
    {
        using var dir = new TempDirectory();
        var files = TestCertificates.Create(dir.Path);
        var missing = Assert.Throws<ArgumentException>(() => new TlsCertificate(Path.Combine(dir.Path, "none.pem"), files.KeyFile, TimeProvider.System));
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);
        var other = TestCertificates.Create(Path.Combine(dir.Path, "other"));
        var mismatch = Assert.Throws<ArgumentException>(() => new TlsCertificate(files.ChainFile, other.KeyFile, TimeProvider.System));
        Assert.Contains("the key must be the certificate's", mismatch.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cert.pem", "", 0, "http://127.0.0.1:5080", "go together")]
    [InlineData("", "", 6514, "http://127.0.0.1:5080", "SyslogTlsPort")]
    [InlineData("", "", 0, "https://127.0.0.1:5080", "https address")]
    public void TlsSettingsThatCannotWorkAreRefused(string certificate, string key, int syslogTls, string urls, string expected)
    {
        var options = new LogwellOptions { TlsCertificateFile = certificate, TlsKeyFile = key, SyslogTlsPort = syslogTls, Urls = urls };
        Assert.Contains(expected, Assert.ThrowsAny<ArgumentException>(options.Validate).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WithTlsEveryTcpAddressSpeaksHttpsAndOnlyPublicClearTextAddressesAreNamed()
    {
        var tls = new LogwellOptions { TlsCertificateFile = "c.pem", TlsKeyFile = "k.pem", Urls = "http://0.0.0.0:5080;http://unix:/run/l.sock;https://[::1]:5443" };
        Assert.Equal("https://0.0.0.0:5080;http://unix:/run/l.sock;https://[::1]:5443", tls.ListenUrls());
        // Where the node's own worker reaches it.
        Assert.Equal("https://127.0.0.1:5080", tls.LocalUrl());
        Assert.Equal("http://127.0.0.1:5080", new LogwellOptions { Urls = "http://unix:/run/l.sock;http://[::]:5080" }.LocalUrl());
        Assert.Null(new LogwellOptions { Urls = "http://unix:/run/l.sock" }.LocalUrl());
        Assert.Empty(tls.ClearTextExposure());
        var clear = new LogwellOptions { Urls = "http://127.0.0.1:5080;http://localhost:5081;http://[::1]:5082;http://0.0.0.0:5083;http://*:5084;http://10.1.2.3:5085", SyslogTcpPort = 514, SyslogAddress = "0.0.0.0" };
        Assert.Equal(new[] { "http://0.0.0.0:5083", "http://*:5084", "http://10.1.2.3:5085", "syslog 0.0.0.0 tcp 514" }, clear.ClearTextExposure());
    }
}
