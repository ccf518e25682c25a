namespace Logwell.Tests;

internal sealed class TempDirectory : IDisposable
{
    private readonly bool _owned = true;

    public TempDirectory() => Directory.CreateDirectory(Path);

    /// <summary>A directory someone else owns: not deleted on dispose.</summary>
    public TempDirectory(string path)
    {
        Path = path;
        _owned = false;
        Directory.CreateDirectory(Path);
    }

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "logwell-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (!_owned)
        {
            return;
        }
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
