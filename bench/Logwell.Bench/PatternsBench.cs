using System.Diagnostics;
using System.Globalization;
using Logwell.Core.Patterns;

namespace Logwell.Bench;

/// <summary>
/// The template miner against Loghub's ground truth: for each system in a directory of Loghub's 2k format
/// (<c>X/X_2k.log_structured.csv</c> with <c>Content</c>, <c>EventId</c> and <c>EventTemplate</c>), the messages are
/// mined in file order with one configuration, and each line's template is the one it has when the whole file was
/// read. Prints grouping accuracy (GA), F1 of grouping (FGA), parsing accuracy (PA), templates found against true,
/// and lines per second on one core, per system and their mean.
/// </summary>
/// <remarks>
/// The miner reads the <c>Content</c> column: the message, as Logwell stores it once the line's time, level and
/// source were taken out at ingest. GA counts a line as right when the lines given its template are exactly those
/// sharing its EventId; FGA is the F1 of the groups found against the true groups; PA counts a line as right when
/// its template is the true one, character for character.
/// </remarks>
internal static class PatternsBench
{
    public static int Run(string[] args)
    {
        var dir = Environment.GetEnvironmentVariable("LOGWELL_LOGHUB_DIR");
        var verbose = false;
        int? shuffle = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--loghub" when i + 1 < args.Length:
                    dir = args[++i];
                    break;
                case "--verbose":
                    verbose = true;
                    break;
                case "--shuffle" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var seed):
                    // The lines in another order (seeded): how much the templates depend on the order they come in.
                    shuffle = seed;
                    i++;
                    break;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}; usage: patterns [--loghub DIR] [--verbose] [--shuffle SEED]");
                    return 2;
            }
        }
        if (dir is null || !Directory.Exists(dir))
        {
            Console.Error.WriteLine("patterns needs Loghub's 2k files: --loghub DIR or LOGWELL_LOGHUB_DIR (a directory with X/X_2k.log_structured.csv per system)");
            return 2;
        }
        var systems = Directory.GetDirectories(dir).Where(d => File.Exists(Path.Combine(d, Path.GetFileName(d) + "_2k.log_structured.csv"))).Order(StringComparer.Ordinal).ToList();
        // Every system mined once before any is timed, so that the JIT has optimised the miner for all of them.
        foreach (var system in systems)
        {
            var warm = LoghubTemplates.ReadCsv(Path.Combine(system, Path.GetFileName(system) + "_2k.log_structured.csv"));
            var column = Array.IndexOf(warm[0], "Content");
            if (column >= 0)
            {
                LinesPerSecond([.. warm.Skip(1).Where(r => r.Length > column).Select(r => r[column])]);
            }
        }
        Console.WriteLine("system       GA     FGA    PA     templates  lines/s (one core)");
        var rows = new List<(double Ga, double Fga, double Pa, double Rate)>();
        foreach (var system in systems)
        {
            var name = Path.GetFileName(system);
            var csv = LoghubTemplates.ReadCsv(Path.Combine(system, name + "_2k.log_structured.csv"));
            var header = csv[0];
            int Column(string column) => Array.IndexOf(header, column) is var at and >= 0 ? at : throw new InvalidDataException($"{name}: no {column} column");
            var (content, eventId, eventTemplate) = (Column("Content"), Column("EventId"), Column("EventTemplate"));
            var lines = csv.Skip(1).Where(r => r.Length > eventTemplate).ToList();
            if (shuffle is { } order)
            {
                new Random(order).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(lines));
            }
            var messages = lines.Select(r => r[content]).ToList();
            var truth = lines.Select(r => r[eventId]).ToList();
            var trueTemplates = lines.Select(r => r[eventTemplate]).ToList();

            var miner = new TemplateMiner();
            var matches = messages.Select(miner.Add).ToList();
            var found = matches.Select(TemplateMiner.Template).ToList();
            var (ga, fga) = Grouping(found, truth);
            var pa = found.Zip(trueTemplates).Count(p => p.First == p.Second) / (double)found.Count;
            var rate = LinesPerSecond(messages);
            rows.Add((ga, fga, pa, rate));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name,-12} {ga,-6:0.000} {fga,-6:0.000} {pa,-6:0.000} {found.Distinct().Count(),4} / {truth.Distinct().Count(),-4} {rate,10:N0}"));
            if (verbose)
            {
                foreach (var miss in found.Zip(trueTemplates).Where(p => p.First != p.Second).GroupBy(p => p).OrderByDescending(g => g.Count()).Take(8))
                {
                    Console.WriteLine($"    {miss.Count(),5}  true  {miss.Key.Second}\n           found {miss.Key.First}");
                }
            }
        }
        if (rows.Count == 0)
        {
            Console.Error.WriteLine($"no system in {dir}");
            return 2;
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"mean",-12} {rows.Average(r => r.Ga),-6:0.000} {rows.Average(r => r.Fga),-6:0.000} {rows.Average(r => r.Pa),-6:0.000} {"",11} {rows.Average(r => r.Rate),10:N0}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lowest GA {rows.Min(r => r.Ga):0.000}"));
        return 0;
    }

    /// <summary>GA and FGA of the groups found (lines with the same template) against the true groups (lines with the same EventId).</summary>
    public static (double Ga, double Fga) Grouping(IReadOnlyList<string> found, IReadOnlyList<string> truth)
    {
        var foundGroups = Groups(found);
        var trueGroups = Groups(truth);
        var trueSets = trueGroups.Values.Select(g => string.Join(',', g)).ToHashSet(StringComparer.Ordinal);
        var correctLines = 0;
        foreach (var group in trueGroups.Values)
        {
            if (foundGroups[found[group[0]]].SequenceEqual(group))
            {
                correctLines += group.Count;
            }
        }
        var correctGroups = foundGroups.Values.Count(g => trueSets.Contains(string.Join(',', g)));
        var precision = correctGroups / (double)foundGroups.Count;
        var recall = correctGroups / (double)trueGroups.Count;
        var fga = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
        return (correctLines / (double)found.Count, fga);
    }

    private static Dictionary<string, List<int>> Groups(IReadOnlyList<string> labels)
    {
        var groups = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (var i = 0; i < labels.Count; i++)
        {
            if (!groups.TryGetValue(labels[i], out var group))
            {
                groups[labels[i]] = group = [];
            }
            group.Add(i);
        }
        return groups;
    }

    /// <summary>Lines mined per second on this thread, each given its template's id as ingest would: the file mined afresh 25 times after a warm-up, the median pass.</summary>
    private static double LinesPerSecond(List<string> messages)
    {
        var passes = new List<double>();
        for (var pass = 0; pass < 30; pass++)
        {
            var miner = new TemplateMiner();
            var clock = Stopwatch.StartNew();
            foreach (var message in messages)
            {
                // As ingest does: each message's template id as it arrives.
                miner.IdOf(miner.Add(message));
            }
            if (pass >= 5)
            {
                passes.Add(messages.Count / clock.Elapsed.TotalSeconds);
            }
        }
        passes.Sort();
        return passes[passes.Count / 2];
    }
}
