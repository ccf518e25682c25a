using System.Net;
using System.Net.Http.Headers;

namespace Logwell.Tests;

/// <summary>Requests an attacker or an unlucky client sends, through the node's whole HTTP pipeline.</summary>
public sealed class HardeningTests
{
    [Theory]
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 })] // a length varint beyond 32 bits
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0x7f })] // a length beyond int.MaxValue
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0x0f })] // 2^32 - 1
    [InlineData(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x08 })] // 2^31
    [InlineData(new byte[] { 0x80 })] // a varint that never ends
    [InlineData(new byte[] { 0x0a, 0xf0, 0x10 })] // a copy before any literal
    public async Task LokiPushWithABrokenSnappyHeaderIsABadRequest(byte[] body)
    {
        await using var node = await InProcessNode.StartAsync();
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        using var response = await node.Http.PostAsync("/loki/api/v1/push", content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
        Assert.Contains("snappy", text, StringComparison.Ordinal);
    }
}
