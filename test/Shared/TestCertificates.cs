using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Logwell.Tests;

/// <summary>
/// A private CA for TLS tests, written as PEM files into a directory: a root, an intermediate it signed, and a server
/// certificate for <c>localhost</c>, <see cref="Name"/> and 127.0.0.1 the intermediate signed. <c>fullchain.pem</c> holds the server
/// certificate and then the intermediate, as a CA hands them out; clients trust <c>ca.pem</c> (the root) alone, so a
/// handshake succeeds only when the server sends the intermediate.
/// </summary>
internal sealed class TestCertificates
{
    private TestCertificates(string directory) => Directory = directory;

    /// <summary>A host name the server certificate holds besides localhost and 127.0.0.1 (reached with a Host header).</summary>
    public const string Name = "logs.logwell.test";

    public string Directory { get; }

    public string RootFile => Path.Combine(Directory, "ca.pem");

    public string ChainFile => Path.Combine(Directory, "fullchain.pem");

    public string KeyFile => Path.Combine(Directory, "key.pem");

    public X509Certificate2 Root { get; private set; } = null!;

    public X509Certificate2 Server { get; private set; } = null!;

    /// <param name="subject">The server certificate's common name (a new one tells a renewal apart).</param>
    public static TestCertificates Create(string directory, string subject = "logwell test server", DateTimeOffset? now = null)
    {
        System.IO.Directory.CreateDirectory(directory);
        var at = now ?? DateTimeOffset.UtcNow;
        using var rootKey = RSA.Create(2048);
        var rootRequest = new CertificateRequest("CN=Logwell Test Root CA", rootKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        AddAuthority(rootRequest);
        var root = rootRequest.CreateSelfSigned(at.AddDays(-1), at.AddYears(2));

        using var intermediateKey = RSA.Create(2048);
        var intermediateRequest = new CertificateRequest("CN=Logwell Test Intermediate CA", intermediateKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        AddAuthority(intermediateRequest);
        intermediateRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(root, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        using var intermediatePublic = intermediateRequest.Create(root, at.AddDays(-1), at.AddYears(1), RandomNumberGenerator.GetBytes(12));
        var intermediate = intermediatePublic.CopyWithPrivateKey(intermediateKey);

        using var serverKey = RSA.Create(2048);
        var serverRequest = new CertificateRequest($"CN={subject}", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        serverRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddDnsName(Name);
        names.AddIpAddress(IPAddress.Loopback);
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(serverRequest.PublicKey, false));
        serverRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(intermediate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var server = serverRequest.Create(intermediate, at.AddDays(-1), at.AddDays(90), RandomNumberGenerator.GetBytes(12));

        var files = new TestCertificates(directory) { Root = root, Server = server };
        File.WriteAllText(files.RootFile, root.ExportCertificatePem() + "\n");
        File.WriteAllText(files.ChainFile, server.ExportCertificatePem() + "\n" + intermediate.ExportCertificatePem() + "\n");
        File.WriteAllText(files.KeyFile, serverKey.ExportPkcs8PrivateKeyPem() + "\n");
        return files;
    }

    private static void AddAuthority(CertificateRequest request)
    {
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
    }

    /// <summary>A handler that trusts the root alone (the server must send the intermediate).</summary>
    public HttpClientHandler TrustingHandler()
    {
        var root = Root;
        return new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, sent, errors) =>
            {
                if (certificate is null || (errors & System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
                {
                    return false;
                }
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(root);
                // What the server sent besides its certificate: the intermediate must come from it.
                chain.ChainPolicy.ExtraStore.AddRange(sent!.ChainPolicy.ExtraStore);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(certificate);
            },
        };
    }
}
