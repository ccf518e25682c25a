namespace Logwell.Server.Agent;

/// <summary>The agent's own log: one timestamped line per thing worth telling, written whole from any thread.</summary>
internal sealed class AgentLog(TextWriter writer, TimeProvider time)
{
    public void Write(string line)
    {
        lock (writer)
        {
            writer.WriteLine($"{time.GetLocalNow():yyyy-MM-dd HH:mm:ss,fff} agent: {line}");
            writer.Flush();
        }
    }
}
