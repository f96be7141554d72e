namespace MedServe.Compliance.Journal;

/// <summary>
/// Follows the journal from a sequence on, remembering where it stopped (segment and offset), so
/// each read costs only the new records: the projections' reader. Read-only; never blocks the writer.
/// </summary>
public sealed class JournalTailReader(string folder, long nextSequence, IReadOnlyList<string>? archives = null)
{
    private string? _segment;
    private long _offset;

    public long NextSequence { get; private set; } = nextSequence;

    /// <summary>Up to <paramref name="limit"/> records from <see cref="NextSequence"/> on, none past <paramref name="through"/>.</summary>
    public IReadOnlyList<JournalRecord> Read(int limit, long through)
    {
        var records = new List<JournalRecord>();
        while (records.Count < limit && NextSequence <= through)
        {
            if (_segment is null && !Locate())
            {
                break;
            }

            var before = records.Count;
            if (!File.Exists(_segment))
            {
                // Archived under us: find where it went.
                _segment = null;
                if (!Locate())
                {
                    break;
                }
            }

            JournalSegments.Scan(_segment!, _offset, (body, hash, start) =>
            {
                var sequence = JournalFormat.SequenceOf(body.Span);
                if (sequence > through || records.Count >= limit)
                {
                    return false;
                }

                if (sequence >= NextSequence)
                {
                    var (_, entry, previous) = JournalFormat.Decode(body.Span);
                    records.Add(new JournalRecord(sequence, entry, previous, hash));
                    NextSequence = sequence + 1;
                }

                _offset = start + JournalFormat.FrameOverhead + body.Length;
                return true;
            });

            if (records.Count == before)
            {
                // Nothing new here: the tail is in the next segment (in the journal or an archive), if there is one yet.
                var current = _segment;
                if (!Locate() || _segment == current)
                {
                    break;
                }
            }
        }

        return records;
    }

    /// <summary>Finds the segment that holds <see cref="NextSequence"/>.</summary>
    private bool Locate()
    {
        var segments = JournalSegments.List(folder, archives ?? []);
        var index = segments.FindLastIndex(s => s.First <= NextSequence);
        if (index < 0)
        {
            return false;
        }

        if (segments[index].Path != _segment)
        {
            _segment = segments[index].Path;
            _offset = 0;
        }

        return true;
    }
}
