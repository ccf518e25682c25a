using Logwell.Core.Events;

namespace Logwell.Storage.Encoding;

/// <summary>The row encoding of an event, as the write-ahead log stores it.</summary>
internal static class EventCodec
{
    public static void Write(ByteWriter writer, LogEvent evt)
    {
        writer.WriteInt64(evt.Timestamp);
        writer.WriteVarUInt((ulong)evt.Seq);
        writer.WriteString(evt.Message);
        writer.WriteVarUInt((ulong)evt.Fields.Length);
        foreach (var field in evt.Fields)
        {
            writer.WriteString(field.Name);
            WriteValue(writer, field.Value);
        }
    }

    public static LogEvent Read(ref ByteReader reader)
    {
        var timestamp = reader.ReadInt64();
        var seq = (long)reader.ReadVarUInt();
        var message = reader.ReadString();
        var count = reader.ReadLength();
        var fields = count == 0 ? [] : new Field[count];
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadString();
            fields[i] = new Field(name, ReadValue(ref reader));
        }
        return new LogEvent(timestamp, message, fields) { Seq = seq };
    }

    public static void WriteValue(ByteWriter writer, FieldValue value)
    {
        writer.WriteByte((byte)value.Kind);
        switch (value.Kind)
        {
            case FieldKind.Long:
                writer.WriteVarInt(value.Long);
                break;
            case FieldKind.Double:
                writer.WriteDouble(value.Double);
                break;
            case FieldKind.String:
            case FieldKind.Json:
                writer.WriteString(value.Text!);
                break;
        }
    }

    public static FieldValue ReadValue(ref ByteReader reader) => ReadValue(ref reader, reader.ReadByte());

    /// <summary>Reads the value that follows a kind byte already read.</summary>
    public static FieldValue ReadValue(ref ByteReader reader, byte kind) => (FieldKind)kind switch
    {
        FieldKind.Null => FieldValue.Null,
        FieldKind.True => FieldValue.True,
        FieldKind.False => FieldValue.False,
        FieldKind.Long => FieldValue.FromLong(reader.ReadVarInt()),
        FieldKind.Double => FieldValue.FromDouble(reader.ReadDouble()),
        FieldKind.String => FieldValue.FromString(reader.ReadString()),
        FieldKind.Json => FieldValue.FromJson(reader.ReadString()),
        _ => throw new InvalidDataException($"unknown field kind {kind}"),
    };
}
