using System.Text.Json;
using Logwell.Server.Hosting;

namespace Logwell.Tests;

/// <summary>What a node sends a Consul agent (the agent itself is not run here: Debian has no package of it).</summary>
public sealed class ConsulRegistrationTests
{
    [Fact]
    public void TheRegistrationNamesTheServiceItsRoleAndAReadinessCheck()
    {
        var service = ConsulRegistration.Service("node-a", "https", "10.0.0.5", 8080, "serve", ["eu", "blue"]);
        using var json = JsonDocument.Parse(JsonSerializer.Serialize(service));
        var root = json.RootElement;
        Assert.Equal("node-a", root.GetProperty("ID").GetString());
        Assert.Equal("logwell", root.GetProperty("Name").GetString());
        Assert.Equal("10.0.0.5", root.GetProperty("Address").GetString());
        Assert.Equal(8080, root.GetProperty("Port").GetInt32());
        Assert.Equal(["serve", "eu", "blue"], root.GetProperty("Tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("serve", root.GetProperty("Meta").GetProperty("role").GetString());
        var check = root.GetProperty("Check");
        Assert.Equal("https://10.0.0.5:8080/readyz", check.GetProperty("HTTP").GetString());
        Assert.Equal("90s", check.GetProperty("DeregisterCriticalServiceAfter").GetString());
    }

    [Fact]
    public void AnIpv6AddressIsBracketedInTheCheck()
    {
        var service = ConsulRegistration.Service("node-b", "http", "fd00::7", 9000, "api", []);
        Assert.Equal("http://[fd00::7]:9000/readyz", service.Check.Http);
    }

    [Theory]
    [InlineData("127.0.0.1:8500")]
    [InlineData("consul")]
    [InlineData("ftp://127.0.0.1:8500")]
    public void AConsulAddressThatIsNoHttpUrlIsRefusedAtStart(string address)
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => new LogwellOptions { ConsulAddress = address }.Validate());
        Assert.Contains("ConsulAddress", error.Message, StringComparison.Ordinal);
    }
}
