//! The local append-only spool: every op is written here, with fsync, before
//! anything is sent to MongoDB. The writer applies records in order from a read
//! cursor; once everything written has been applied, the file is truncated to
//! nothing. After a crash the next start finds the records still there and
//! applies them again, which is harmless because every op is idempotent.
//!
//! Record format: `len: u32 LE`, `crc32(payload): u32 LE`, `payload` (JSON of
//! [`Sequenced`]). A torn tail (short record or bad checksum) was never
//! acknowledged and is cut off at open.
//!
//! Sequence numbers are `max(now in µs, last + 1)`, so they keep growing
//! across restarts as long as the clock does not step back past the last one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::op::{Op, Sequenced};

const HEADER: u64 = 8;
/// Applied bytes at the head of the file before it is worth compacting.
const COMPACT_AFTER: u64 = 16 * 1024 * 1024;
const FILE_NAME: &str = "spool.log";
/// Holds the last sequence number while the spool file is empty.
const SEQ_FILE_NAME: &str = "spool.seq";

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool is full ({used} of {max} bytes); increments wait until MongoDB drains it")]
    Full { used: u64, max: u64 },
    #[error("spool I/O error: {0}")]
    Io(#[from] io::Error),
}

/// A batch read from the spool, to be acknowledged with [`Spool::commit`].
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<Sequenced>,
    end: u64,
}

/// Counts describing the spool, for logs and `/ud`'s "numbers may lag" note.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolUsage {
    pub bytes: u64,
    pub pending_records: u64,
}

/// The spool file and its cursors.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    max_bytes: u64,
    inner: Mutex<Inner>,
    /// Mirrors of `Inner::len` and `Inner::pending`, readable without
    /// waiting for an fsync in progress.
    bytes: AtomicU64,
    pending: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    file: File,
    len: u64,
    read_pos: u64,
    pending: u64,
    last_seq: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, cutting off a torn tail.
    ///
    /// # Errors
    /// The directory cannot be created or the file cannot be read or written.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let (len, pending, last_seq) = scan(&file)?;
        let last_seq = last_seq.max(read_seq_floor(&dir.join(SEQ_FILE_NAME)));
        if len != file.metadata()?.len() {
            tracing::warn!(path = %path.display(), kept_bytes = len, "spool had a torn tail; cut it off");
            file.set_len(len)?;
            file.sync_all()?;
        }
        Ok(Spool {
            path,
            max_bytes,
            bytes: AtomicU64::new(len),
            pending: AtomicU64::new(pending),
            inner: Mutex::new(Inner {
                file,
                len,
                read_pos: 0,
                pending,
                last_seq,
            }),
        })
    }

    /// Where the spool lives.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `ops` in order, each with the next sequence number, and fsyncs.
    /// Returns only once the records are durable.
    ///
    /// # Errors
    /// [`SpoolError::Full`] if the ops do not fit in `max_bytes` (nothing is
    /// written), or an I/O error.
    pub fn append(&self, ops: &[Op], now_micros: u64) -> Result<(), SpoolError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut inner = self.lock();
        let mut seq = inner.last_seq;
        let mut buf = Vec::with_capacity(ops.len() * 128);
        for op in ops {
            seq = now_micros.max(seq + 1);
            let payload = serde_json::to_vec(&Sequenced {
                seq,
                op: op.clone(),
            })
            .map_err(io::Error::other)?;
            let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            buf.extend_from_slice(&payload);
        }
        let used = inner.len + buf.len() as u64;
        if used > self.max_bytes {
            return Err(SpoolError::Full {
                used: inner.len,
                max: self.max_bytes,
            });
        }
        inner.file.write_all_at(&buf, inner.len)?;
        inner.file.sync_data()?;
        inner.len = used;
        inner.pending += ops.len() as u64;
        inner.last_seq = seq;
        self.publish(&inner);
        Ok(())
    }

    /// Reads up to `max` records after the read cursor, without moving it.
    ///
    /// # Errors
    /// I/O errors reading the file.
    pub fn read_batch(&self, max: usize) -> io::Result<Batch> {
        let inner = self.lock();
        let mut records = Vec::new();
        let mut pos = inner.read_pos;
        while pos < inner.len && records.len() < max {
            let Some((rec, next)) = read_record(&inner.file, pos, inner.len)? else {
                break;
            };
            records.push(rec);
            pos = next;
        }
        Ok(Batch { records, end: pos })
    }

    /// Marks a batch as applied. When everything written has been applied the
    /// file is truncated to nothing.
    ///
    /// # Errors
    /// I/O errors truncating the file.
    pub fn commit(&self, batch: &Batch) -> io::Result<()> {
        let mut inner = self.lock();
        inner.read_pos = inner.read_pos.max(batch.end);
        inner.pending = inner.pending.saturating_sub(batch.records.len() as u64);
        if inner.read_pos >= inner.len {
            // Remember the last seq before the file forgets it.
            self.save_seq_floor(inner.last_seq)?;
            inner.file.set_len(0)?;
            // The file is empty now, whatever the sync below says: appends
            // must start at 0 or the next start would find a hole.
            inner.len = 0;
            inner.read_pos = 0;
            inner.pending = 0;
            inner.file.sync_all()?;
        } else if inner.read_pos >= COMPACT_AFTER
            && inner.len - inner.read_pos <= inner.read_pos / 4
        {
            // Under sustained load the spool may never be empty at a commit:
            // drop the applied prefix so the file does not grow without end.
            self.compact(&mut inner)?;
        }
        self.publish(&inner);
        Ok(())
    }

    /// Rewrites the file with only the records after the read cursor:
    /// written to a new file, synced, then renamed over the old one, so a
    /// crash at any point leaves either the old or the new file whole.
    fn compact(&self, inner: &mut Inner) -> io::Result<()> {
        let tail_len = usize::try_from(inner.len - inner.read_pos).map_err(io::Error::other)?;
        let mut tail = vec![0u8; tail_len];
        inner.file.read_exact_at(&mut tail, inner.read_pos)?;
        let tmp = self.path.with_extension("log.compact");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all_at(&tail, 0)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        tracing::debug!(
            dropped_bytes = inner.read_pos,
            kept_bytes = tail_len,
            "spool compacted"
        );
        inner.file = file;
        inner.len = tail_len as u64;
        inner.read_pos = 0;
        Ok(())
    }

    /// Current size and number of records not yet applied. Never waits.
    #[must_use]
    pub fn usage(&self) -> SpoolUsage {
        SpoolUsage {
            bytes: self.bytes.load(Ordering::Acquire),
            pending_records: self.pending.load(Ordering::Acquire),
        }
    }

    /// Persists `seq` as the floor for sequence numbers after a restart, so
    /// that they keep growing even if the next host's clock is behind.
    fn save_seq_floor(&self, seq: u64) -> io::Result<()> {
        let path = self.path.with_file_name(SEQ_FILE_NAME);
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        f.write_all_at(&seq.to_le_bytes(), 0)?;
        f.sync_data()
    }

    fn publish(&self, inner: &Inner) {
        self.bytes.store(inner.len, Ordering::Release);
        self.pending.store(inner.pending, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the cursors inconsistent
        // with the file in a way that loses data: reuse the state.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn read_seq_floor(path: &Path) -> u64 {
    let mut buf = [0u8; 8];
    match File::open(path).and_then(|f| f.read_exact_at(&mut buf, 0)) {
        Ok(()) => u64::from_le_bytes(buf),
        Err(_) => 0,
    }
}

/// Walks the file: returns the length of its valid prefix, the number of
/// records in it and the highest sequence number.
fn scan(file: &File) -> io::Result<(u64, u64, u64)> {
    let file_len = file.metadata()?.len();
    let (mut pos, mut count, mut last_seq) = (0, 0, 0);
    while let Some((rec, next)) = read_record(file, pos, file_len)? {
        pos = next;
        count += 1;
        last_seq = last_seq.max(rec.seq);
    }
    Ok((pos, count, last_seq))
}

/// Reads the record at `pos`; `None` at the end or at a torn record.
fn read_record(file: &File, pos: u64, len: u64) -> io::Result<Option<(Sequenced, u64)>> {
    if pos + HEADER > len {
        return Ok(None);
    }
    let mut header = [0u8; 8];
    file.read_exact_at(&mut header, pos)?;
    let size = u64::from(u32::from_le_bytes(header[..4].try_into().expect("4 bytes")));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if pos + HEADER + size > len {
        return Ok(None);
    }
    let mut payload = vec![0u8; usize::try_from(size).map_err(io::Error::other)?];
    file.read_exact_at(&mut payload, pos + HEADER)?;
    if crc32fast::hash(&payload) != crc {
        return Ok(None);
    }
    match serde_json::from_slice(&payload) {
        Ok(rec) => Ok(Some((rec, pos + HEADER + size))),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(user: u64) -> Op {
        Op::Message {
            guild: 1,
            user,
            day: "2026-01-01".into(),
        }
    }

    #[test]
    fn append_read_commit_truncates_when_drained() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&[msg(1), msg(2)], 10).unwrap();
        spool.append(&[msg(3)], 5).unwrap();
        let batch = spool.read_batch(2).unwrap();
        let seqs: Vec<u64> = batch.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![10, 11]);
        spool.commit(&batch).unwrap();
        assert_eq!(spool.usage().pending_records, 1);
        let rest = spool.read_batch(10).unwrap();
        assert_eq!(rest.records[0].seq, 12, "sequence never goes back");
        spool.commit(&rest).unwrap();
        assert_eq!(spool.usage(), SpoolUsage::default());
        assert_eq!(std::fs::metadata(spool.path()).unwrap().len(), 0);
    }

    #[test]
    fn reopen_finds_unapplied_records_and_cuts_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.append(&[msg(1), msg(2)], 100).unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let good = std::fs::metadata(&path).unwrap().len();
        // A crash in the middle of an append leaves half a record.
        let f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all_at(&[50, 0, 0, 0, 1, 2], good).unwrap();
        drop(f);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.usage().pending_records, 2);
        assert_eq!(spool.usage().bytes, good);
        let batch = spool.read_batch(10).unwrap();
        assert_eq!(batch.records.len(), 2);
        spool.append(&[msg(3)], 0).unwrap();
        assert_eq!(spool.read_batch(10).unwrap().records[2].seq, 102);
    }

    #[test]
    fn a_spool_that_never_empties_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let ops: Vec<Op> = (0..1_000).map(msg).collect();
        let mut appended = 0;
        while spool.usage().bytes < COMPACT_AFTER + (1 << 20) {
            spool.append(&ops, 0).unwrap();
            appended += ops.len();
        }
        // Apply everything but the last record: never fully drained.
        let mut read = 0;
        while read < appended - 1 {
            let batch = spool.read_batch((appended - 1 - read).min(4_000)).unwrap();
            read += batch.records.len();
            spool.commit(&batch).unwrap();
        }
        assert!(spool.usage().bytes < COMPACT_AFTER, "{:?}", spool.usage());
        let last = spool.read_batch(10).unwrap();
        assert_eq!(last.records.len(), 1);
        assert_eq!(last.records[0].op, msg(999));
        drop(spool);
        // A restart finds the compacted file: the unapplied record and the
        // applied ones since the last compaction (replayed harmlessly).
        let reopened = Spool::open(dir.path(), 1 << 30).unwrap();
        let pending = reopened.usage().pending_records;
        assert!(pending >= 1 && pending < appended as u64 / 2, "{pending}");
        let all = reopened.read_batch(usize::MAX).unwrap();
        assert_eq!(all.records.last().unwrap().op, msg(999));
    }

    #[test]
    fn sequence_numbers_keep_growing_after_a_drained_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.append(&[msg(1)], 5_000).unwrap();
            let b = spool.read_batch(10).unwrap();
            spool.commit(&b).unwrap();
            assert_eq!(spool.usage().bytes, 0);
        }
        // The next host's clock is behind.
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&[msg(2)], 10).unwrap();
        assert_eq!(spool.read_batch(1).unwrap().records[0].seq, 5_001);
    }

    #[test]
    fn full_spool_refuses_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 100).unwrap();
        spool.append(&[msg(1)], 1).unwrap();
        let before = spool.usage();
        assert!(matches!(
            spool.append(&[msg(2), msg(3)], 2),
            Err(SpoolError::Full { .. })
        ));
        assert_eq!(spool.usage(), before);
    }
}
