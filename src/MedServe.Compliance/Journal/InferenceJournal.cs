using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace MedServe.Compliance.Journal;

/// <summary>The "MedServe:Journal" section.</summary>
public sealed class JournalOptions
{
    /// <summary>The folder of the segment files.</summary>
    public string Folder { get; set; } = "";

    /// <summary>The anchor file: keep it outside the data dir (docs/security.md); default beside the segments.</summary>
    public string? AnchorPath { get; set; }

    /// <summary>Segments are preallocated to this size and roll when full.</summary>
    public long SegmentBytes { get; set; } = 64L << 20;

    /// <summary>Records waiting for their batch; one more is refused (back-pressure, never an unbounded heap).</summary>
    public int QueueCapacity { get; set; } = 65_536;

    /// <summary>A checkpoint is signed at least this often while records arrive.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>fdatasync after every batch: off only to measure what durability costs.</summary>
    public bool Durable { get; set; } = true;
}

/// <summary>The journal's queue is full: the caller answers 503 with Retry-After.</summary>
public sealed class JournalFullException(string message) : Exception(message);

/// <summary>The journal cannot write (a failed disk, a tampered tail): audited routes stop, readiness turns false.</summary>
public sealed class JournalUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The append-only journal: one record per inference and per action, hash-chained (each body
/// holds the previous record's hash), with signed checkpoints, in preallocated segment files.
/// One writer thread takes every waiting record, seals and frames them into one buffer, writes it
/// with one call and one fdatasync, then completes their appends: many records per flush, and an
/// append completes only once its record is durable. Encoding happens on the appending thread;
/// sequence, previous hash, SHA-256 and CRC on the writer.
/// </summary>
public sealed partial class InferenceJournal : IAsyncDisposable
{
    private readonly JournalOptions _options;
    private readonly ECDsa _signer;
    private readonly TimeProvider _time;
    private readonly JournalAnchor _anchor;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private List<Pending> _pending = [];
    private List<Pending> _spare = [];
    private byte[] _buffer = new byte[1 << 20];
    private SafeFileHandle? _segment;
    private long _segmentFirst;
    private long _offset;
    private long _sequence;
    private byte[] _head = new byte[JournalFormat.HashSize];
    private JournalHead? _lastCheckpoint;
    private long _lastCheckpointAt;
    private volatile bool _stopping;
    private volatile string? _failure;
    private long _durable;
    private volatile JournalHead? _published;
    private volatile string? _writeFault;
    private volatile string? _lastWriteError;

    private InferenceJournal(JournalOptions options, ECDsa signer, TimeProvider time, JournalAnchor anchor)
    {
        _options = options;
        _signer = signer;
        _time = time;
        _anchor = anchor;
        _thread = new Thread(WriteLoop) { IsBackground = true, Name = "journal writer" };
    }

    /// <summary>The last sequence on disk.</summary>
    public long DurableSequence => Interlocked.Read(ref _durable);

    /// <summary>Batches written (each one write and one fdatasync).</summary>
    public long Commits { get; private set; }

    /// <summary>Null while the journal writes; else why it cannot.</summary>
    public string? Failure => _failure;

    /// <summary>Why the last batch failed, until a batch succeeds again (readiness is false meanwhile); null after a good batch.</summary>
    public string? LastWriteError => _failure ?? _lastWriteError;

    public string Folder => _options.Folder;

    /// <summary>
    /// Tests only: makes every batch fail as a failed disk would (before a byte is written), until
    /// cleared with null. A real write error takes the same path.
    /// </summary>
    internal void InjectWriteFault(string? message) => _writeFault = message;

    /// <summary>True while the queue holds its capacity: new work that would need a record is refused before it starts.</summary>
    public bool IsFull => Volatile.Read(ref _pending).Count >= _options.QueueCapacity;

    /// <summary>The newest durable head and signed checkpoint: a live verifier's anchor (it reads only up to here).</summary>
    public JournalHead? Head => _published;

    /// <summary>Raised on the writer thread after each signed checkpoint is durable (the server logs the head: a copy beyond the data dir).</summary>
    public event Action<JournalHead>? Checkpointed;

    /// <summary>
    /// Opens (or creates) the journal, recovers the tail after a crash (the last whole record; a
    /// torn frame after it is cleared) and checks the tail against the anchor: a journal that ends
    /// before the anchor's head has lost records, and is refused.
    /// </summary>
    public static InferenceJournal Open(JournalOptions options, ECDsa signer, TimeProvider? time = null)
    {
        Directory.CreateDirectory(options.Folder);
        var anchor = JournalAnchor.OpenForWriting(options.AnchorPath ?? Path.Combine(options.Folder, "anchor"));
        var journal = new InferenceJournal(options, signer, time ?? TimeProvider.System, anchor);
        try
        {
            journal.Recover();
            journal.CheckAnchor(anchor.Read());
        }
        catch
        {
            anchor.Dispose();
            journal._segment?.Dispose();
            throw;
        }

        journal._thread.Start();
        return journal;
    }

    /// <summary>Appends an entry; completes with its sequence once it is durable.</summary>
    /// <exception cref="JournalFullException">The queue is full.</exception>
    /// <exception cref="JournalUnavailableException">The journal cannot write.</exception>
    public Task<long> AppendAsync(JournalEntry entry)
    {
        if (_failure is { } failure)
        {
            return Task.FromException<long>(new JournalUnavailableException(failure));
        }

        var pending = new Pending(JournalFormat.EncodeBody(entry));
        lock (_gate)
        {
            if (_stopping)
            {
                return Task.FromException<long>(new JournalUnavailableException("the journal is closed"));
            }

            if (_pending.Count >= _options.QueueCapacity)
            {
                return Task.FromException<long>(new JournalFullException($"the journal has {_options.QueueCapacity} records waiting (MedServe:Journal:QueueCapacity)"));
            }

            _pending.Add(pending);
            if (_pending.Count == 1)
            {
                Monitor.Pulse(_gate);
            }
        }

        return pending.Done.Task;
    }

    /// <summary>Completes once every record appended before it is durable (or has failed).</summary>
    public Task FlushAsync()
    {
        // Always queued, even behind nothing: the writer may be committing a batch taken already.
        var marker = new Pending(null);
        lock (_gate)
        {
            if (_stopping)
            {
                return Task.CompletedTask;
            }

            _pending.Add(marker);
            if (_pending.Count == 1)
            {
                Monitor.Pulse(_gate);
            }
        }

        return marker.Done.Task;
    }

    /// <summary>
    /// Moves the oldest finished segments whose every record is older than <paramref name="olderThan"/>
    /// to <paramref name="archiveFolder"/> (another volume, cold storage), oldest first and without
    /// gaps. Before a file moves, a durable record in the chain says which records went and the hash
    /// of the last one, so a verifier of the journal alone can tell archived records from deleted
    /// ones. Each file is copied and flushed before its original is removed. Returns how many moved.
    /// </summary>
    public async Task<int> ArchiveAsync(DateTimeOffset olderThan, string archiveFolder)
    {
        var segments = JournalSegments.List(_options.Folder);
        var moving = 0;
        for (var i = 0; i < segments.Count - 1; i++)
        {
            DateTimeOffset newest = default;
            JournalSegments.Scan(segments[i].Path, (body, _, _) =>
            {
                newest = JournalFormat.Decode(body.Span).Entry.Time;
                return true;
            });
            if (newest >= olderThan)
            {
                break;
            }

            moving++;
        }

        if (moving == 0)
        {
            return 0;
        }

        // The record before the first segment kept: its hash is that segment's header's.
        var kept = JournalSegments.ReadHeader(segments[moving].Path) ?? throw new JournalUnavailableException("a journal segment has no valid header: run 'medserve audit verify'");
        await AppendAsync(new JournalEntry(_time.GetUtcNow(), JournalKind.Action, "system", JournalVerifier.ArchiveAction,
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"records 1-{kept.First - 1}"), Convert.ToHexStringLower(kept.PreviousHash), "", "", "")).ConfigureAwait(false);

        Directory.CreateDirectory(archiveFolder);
        for (var i = 0; i < moving; i++)
        {
            var target = Path.Combine(archiveFolder, Path.GetFileName(segments[i].Path));
            File.Copy(segments[i].Path, target, overwrite: true);
            using (var copy = File.OpenHandle(target, FileMode.Open, FileAccess.ReadWrite))
            {
                RandomAccess.FlushToDisk(copy);
            }

            File.Delete(segments[i].Path);
        }

        return moving;
    }

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }

        await Task.Run(_thread.Join).ConfigureAwait(false);
        _segment?.Dispose();
        _anchor.Dispose();
    }

    private void WriteLoop()
    {
        while (true)
        {
            List<Pending> batch;
            lock (_gate)
            {
                while (_pending.Count == 0 && !_stopping)
                {
                    Monitor.Wait(_gate);
                }

                if (_pending.Count == 0)
                {
                    return;
                }

                batch = _pending;
                _pending = _spare;
                _spare = batch;
            }

            try
            {
                if (_failure is { } failure)
                {
                    throw new JournalUnavailableException(failure);
                }

                if (Commit(batch))
                {
                    _lastWriteError = null;
                }

                foreach (var pending in batch)
                {
                    pending.Done.TrySetResult(pending.Sequence);
                }
            }
            catch (Exception e)
            {
                // Nothing in the batch is known durable: each append fails (the caller fails closed).
                // The head on disk may or may not hold the batch: read it back rather than guess.
                foreach (var pending in batch)
                {
                    pending.Done.TrySetException(e as JournalUnavailableException ?? new JournalUnavailableException("the journal could not write: " + e.Message, e));
                }

                _lastWriteError = "the journal could not write: " + e.Message;
                TryRecoverAfterFailure(e);
            }

            batch.Clear();
        }
    }

    /// <summary>Writes the batch; false when it held only flush markers (nothing written).</summary>
    private bool Commit(List<Pending> batch)
    {
        if (batch.TrueForAll(p => p.Body is null))
        {
            // Only flush markers: everything before them is durable already.
            foreach (var marker in batch)
            {
                marker.Sequence = _sequence;
            }

            return false;
        }

        if (_writeFault is { } fault)
        {
            throw new IOException(fault);
        }

        var size = 0L;
        foreach (var pending in batch)
        {
            size += JournalFormat.FrameOverhead + (pending.Body?.Length ?? 0);
        }

        var now = _time.GetTimestamp();
        var checkpoint = _lastCheckpoint is null || _time.GetElapsedTime(_lastCheckpointAt, now) >= _options.CheckpointInterval;
        size += checkpoint ? 512 : 0;
        if (_offset + size > _options.SegmentBytes && _offset > JournalFormat.HeaderSize)
        {
            Roll();
        }

        EnsureBuffer(size);
        var length = 0;
        foreach (var pending in batch)
        {
            if (pending.Body is null)
            {
                pending.Sequence = _sequence;
                continue;
            }

            pending.Sequence = ++_sequence;
            length += Frame(pending.Body, _buffer.AsSpan(length));
        }

        if (checkpoint)
        {
            var signature = _signer.SignData(JournalFormat.CheckpointMessage(_sequence, _head), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
            _lastCheckpoint = new JournalHead(_sequence, _head, _sequence, _head, signature);
            var body = JournalFormat.EncodeBody(new JournalEntry(_time.GetUtcNow(), JournalKind.Checkpoint, "system", "checkpoint", "", "", "", "", "") { Payload = signature });
            ++_sequence;
            length += Frame(body, _buffer.AsSpan(length));
            _lastCheckpointAt = now;
        }

        RandomAccess.Write(_segment!, _buffer.AsSpan(0, length), _offset);
        if (_options.Durable && FlushData(_segment!) != 0)
        {
            throw new IOException($"fdatasync failed with errno {Marshal.GetLastPInvokeError()}");
        }

        _offset += length;
        Commits++;
        Interlocked.Exchange(ref _durable, _sequence);
        var head = new JournalHead(_sequence, _head, _lastCheckpoint!.Sequence, _lastCheckpoint.Hash, _lastCheckpoint.Signature);
        _anchor.Write(head);
        _published = head;
        if (checkpoint)
        {
            Checkpointed?.Invoke(head);
        }

        return true;
    }

    /// <summary>Seals a body (sequence already advanced), frames it into the buffer and moves the head; returns the bytes written.</summary>
    private int Frame(byte[] body, Span<byte> destination)
    {
        JournalFormat.Seal(body, _sequence, _head);
        JournalSegments.WriteFrameHeader(destination, body);
        body.CopyTo(destination[JournalFormat.FrameOverhead..]);
        _head = SHA256.HashData(body);
        return JournalFormat.FrameOverhead + body.Length;
    }

    private void EnsureBuffer(long size)
    {
        if (_buffer.Length < size)
        {
            _buffer = new byte[(int)Math.Min(int.MaxValue, Math.Max(size, _buffer.Length * 2L))];
        }
    }

    private void Roll()
    {
        var path = Path.Combine(_options.Folder, JournalSegments.Name(_sequence + 1));
        var header = JournalSegments.Header(_sequence + 1, _head);
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, FileOptions.None);
        RandomAccess.SetLength(handle, _options.SegmentBytes);
        RandomAccess.Write(handle, header, 0);
        if (_options.Durable)
        {
            RandomAccess.FlushToDisk(handle);
            FlushFolder();
        }

        // The finished segment keeps its preallocated zeros: a reader stops at the first empty frame.
        _segment?.Dispose();
        _segment = handle;
        _segmentFirst = _sequence + 1;
        _offset = JournalFormat.HeaderSize;
    }

    /// <summary>Finds the last whole record: its sequence, hash and where the next one goes.</summary>
    private void Recover()
    {
        var segments = JournalSegments.List(_options.Folder);
        _segment?.Dispose();
        _segment = null;
        if (segments.Count == 0)
        {
            _sequence = 0;
            _head = new byte[JournalFormat.HashSize];
            Roll();
            return;
        }

        var (first, path) = segments[^1];
        var expected = first;
        byte[]? previous = null;
        var scan = JournalSegments.Scan(path, (body, hash, _) =>
        {
            var sequence = JournalFormat.SequenceOf(body.Span);
            if (sequence != expected || (previous is not null && !JournalFormat.PreviousHashOf(body.Span).SequenceEqual(previous)))
            {
                throw new JournalUnavailableException($"the journal's last segment is not a chain at record {expected}: it was altered; run 'medserve audit verify'");
            }

            previous = hash;
            expected++;
            return true;
        });
        if (!scan.ValidHeader || scan.FirstSequence != first)
        {
            throw new JournalUnavailableException("the journal's last segment has no valid header: it was altered; run 'medserve audit verify'");
        }

        _sequence = scan.Records == 0 ? first - 1 : scan.LastSequence;
        _head = scan.LastHash ?? scan.PreviousHash;
        _segmentFirst = first;
        _offset = scan.End;
        _segment = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);

        // A torn frame after the tail is cleared, so no later reader mistakes its remains for a record.
        var length = RandomAccess.GetLength(_segment);
        if (length > _offset)
        {
            RandomAccess.SetLength(_segment, _offset);
            RandomAccess.SetLength(_segment, Math.Max(length, _options.SegmentBytes));
            RandomAccess.FlushToDisk(_segment);
        }

        Interlocked.Exchange(ref _durable, _sequence);
    }

    /// <summary>The chain must reach the anchor's head with the same hash: otherwise its last records were deleted or rewritten.</summary>
    private void CheckAnchor(JournalHead? anchor)
    {
        if (anchor is null || anchor.Sequence == 0)
        {
            return;
        }

        if (_sequence < anchor.Sequence)
        {
            throw new JournalUnavailableException(
                $"the journal ends at record {_sequence} but its anchor records {anchor.Sequence} written: records were deleted; run 'medserve audit verify'");
        }

        if (anchor.Sequence >= _segmentFirst && JournalVerifier.HashAt(_options.Folder, anchor.Sequence) is { } hash && !hash.AsSpan().SequenceEqual(anchor.Hash))
        {
            throw new JournalUnavailableException($"record {anchor.Sequence} differs from the anchored head: the journal was rewritten; run 'medserve audit verify'");
        }

        _lastCheckpoint = anchor.CheckpointSequence > 0 ? new JournalHead(anchor.CheckpointSequence, anchor.CheckpointHash, anchor.CheckpointSequence, anchor.CheckpointHash, anchor.Signature) : null;
        _published = _sequence == anchor.Sequence ? anchor : null;
    }

    private void TryRecoverAfterFailure(Exception e)
    {
        try
        {
            Recover();
        }
        catch (Exception again)
        {
            _failure = $"the journal could not write ({e.Message}) nor read its tail back ({again.Message})";
        }
    }

    private void FlushFolder()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // A new segment's name is durable only once its folder is.
        var fd = Open(_options.Folder, 0 /* O_RDONLY */);
        if (fd >= 0)
        {
            Fdatasync(fd);
            Close(fd);
        }
    }

    /// <summary>fdatasync where there is one (the file's size and data, not its times); a full flush elsewhere.</summary>
    private static int FlushData(SafeFileHandle handle)
    {
        if (OperatingSystem.IsLinux())
        {
            return Fdatasync((int)handle.DangerousGetHandle());
        }

        RandomAccess.FlushToDisk(handle);
        return 0;
    }

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int Fdatasync(int fd);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    /// <summary>A record waiting for its batch; a null body is a flush marker, completed with its batch and never written.</summary>
    private sealed class Pending(byte[]? body)
    {
        public byte[]? Body { get; } = body;

        public long Sequence { get; set; }

        public TaskCompletionSource<long> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
