//! The local append-only spool: every op is written here, with fsync, before
//! anything is sent to MongoDB; applied in order from a read cursor, then the
//! file is emptied (down to its header). After a crash the records still
//! there are applied again, harmless since every op is idempotent.
//!
//! The file format is in [`format`]. A torn tail (the last write never
//! completed, so it was never acknowledged) is cut at open; a complete record
//! that fails its checksum or does not decode is never cut: start-up stops
//! with an error naming the file and the offset. Sequence numbers are
//! `max(now in µs, last + 1)`: rising across restarts unless the clock steps
//! back past the last one.

mod error;
mod files;
pub(super) mod format;
mod migrate;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::op::{Op, Sequenced};
pub use error::SpoolError;
use files::{lock_dir, read_seq_floor, sync_dir};
use format::{Header, Read, HEADER_LEN};

/// Applied bytes at the head of the file before it is worth compacting.
const COMPACT_AFTER: u64 = 16 * 1024 * 1024;
/// The spool of this format version.
const FILE_NAME: &str = "spool-v2.log";
/// The spool of format 1 (no header), read and moved into the current file.
const LEGACY_FILE_NAME: &str = "spool.log";
/// Locked by the process that has the spool open.
const LOCK_FILE_NAME: &str = "spool.lock";
/// Holds the last sequence number while the spool file is empty.
const SEQ_FILE_NAME: &str = "spool.seq";
/// This spool directory's identity, kept across restarts (see
/// [`Spool::instance_id`]).
const INSTANCE_FILE_NAME: &str = "instance-id";
/// The last lease epoch this spool directory held.
const HELD_EPOCH_FILE_NAME: &str = "lease-epoch";

/// A batch read from the spool, to be acknowledged with [`Spool::commit`].
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<Sequenced>,
    end: u64,
}

/// How much of the spool is in use, for logs and `/ud`'s "numbers may lag" note.
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
    /// Records with a sequence number from here on were appended by this
    /// process.
    own_from: AtomicU64,
    epoch: AtomicU64, // stamped on records appended from now on (0: no lease)
    instance_id: String,
    /// `SPOOL_DIR/spool.lock`, locked exclusively while the spool is open:
    /// two processes on one spool would interleave their records.
    _lock: File,
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
    /// Opens (or creates) the spool in `dir`: cuts a torn tail, moves records
    /// left by a format-1 spool into it, and refuses (changing nothing) a file
    /// with a corrupt record or from a newer format.
    ///
    /// # Errors
    /// The directory or file cannot be used, a record is corrupt, or the
    /// format is not one this version reads.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        migrate::refuse_newer_formats(dir)?;
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match format::read_header(&file)? {
            Header::Current => {}
            Header::Empty | Header::Torn => {
                file.set_len(0)?;
                file.write_all_at(&format::header(), 0)?;
                file.sync_all()?;
                // The new file's name must survive a crash too.
                sync_dir(dir)?;
            }
            Header::Other(found) => return Err(SpoolError::Unsupported { path, found }),
        }
        let corrupt = |(offset, reason)| SpoolError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        let mut scan = format::scan(&file, HEADER_LEN, |_| {}).map_err(corrupt)?;
        if scan.end != file.metadata()?.len() {
            tracing::warn!(path = %path.display(), kept_bytes = scan.end, "spool had a torn tail (a write cut by a crash, never acknowledged); cut it off");
            file.set_len(scan.end)?;
            file.sync_all()?;
        }
        migrate::legacy(dir, &file, &path, &mut scan)?;
        let last_seq = scan.last_seq.max(read_seq_floor(&dir.join(SEQ_FILE_NAME)));
        let instance_id = files::instance_id(&dir.join(INSTANCE_FILE_NAME))?;
        Ok(Spool {
            instance_id,
            path,
            max_bytes,
            bytes: AtomicU64::new(scan.end),
            pending: AtomicU64::new(scan.count),
            own_from: AtomicU64::new(last_seq.saturating_add(1)),
            epoch: AtomicU64::new(0),
            _lock: lock,
            inner: Mutex::new(Inner {
                file,
                len: scan.end,
                read_pos: HEADER_LEN,
                pending: scan.count,
                last_seq,
            }),
        })
    }

    /// A random id created with the spool directory and kept in it: the
    /// same for every process that opens this directory (one at a time, by
    /// the lock), new with a new disk. The lease names its holder with it,
    /// so a process restarted on the same disk after a crash takes its own
    /// lease back at once instead of waiting for it to expire.
    #[must_use]
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The last lease epoch a process on this spool directory took, kept in
    /// `SPOOL_DIR/lease-epoch` (written before anything is stamped with
    /// it): with [`Spool::instance_id`], what proves a lease was this
    /// spool's own under any hostname. `None`: none recorded.
    #[must_use]
    pub fn held_epoch(&self) -> Option<u64> {
        files::read_held_epoch(&self.path.with_file_name(HELD_EPOCH_FILE_NAME))
    }

    /// Records `epoch` as the last lease epoch this spool held, durably.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_held_epoch(&self, epoch: u64) -> io::Result<()> {
        files::save_held_epoch(&self.path.with_file_name(HELD_EPOCH_FILE_NAME), epoch)
    }

    /// The first sequence number this process can have issued: records
    /// from it on were appended since this spool was opened.
    #[must_use]
    pub fn own_from(&self) -> u64 {
        self.own_from.load(Ordering::Acquire)
    }

    /// Raises the floor of sequence numbers to `seq` (the high-water mark in
    /// MongoDB): a new host whose clock is behind never issues numbers
    /// MongoDB would take for replays. Call before the first append.
    pub fn raise_floor(&self, seq: u64) {
        let mut inner = self.lock();
        if seq > inner.last_seq {
            inner.last_seq = seq;
            self.own_from
                .fetch_max(seq.saturating_add(1), Ordering::AcqRel);
        }
    }

    /// Stamps records appended from now on with the lease epoch `epoch`.
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Release);
    }

    /// The highest sequence number issued so far.
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Where the spool lives.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `ops` in order, each with the next sequence number, and fsyncs
    /// (stamped with the epoch of [`Spool::set_epoch`]). Returns only once
    /// the records are durable.
    ///
    /// # Errors
    /// [`SpoolError::Full`] if the ops do not fit in `max_bytes` (nothing is
    /// written), or an I/O error.
    pub fn append(&self, ops: &[Op], now_micros: u64) -> Result<(), SpoolError> {
        let epoch = self.epoch.load(Ordering::Acquire);
        self.append_stamped(epoch, ops, now_micros, false)
    }

    /// [`Spool::append`] with the epoch the ops were submitted under;
    /// `at_shutdown`: past `SPOOL_MAX_BYTES` (what is in memory goes to
    /// disk rather than die with the process; the outbox folds it).
    ///
    /// # Errors
    /// As [`Spool::append`] (never `Full` at shutdown).
    pub fn append_stamped(
        &self,
        epoch: u64,
        ops: &[Op],
        now_micros: u64,
        at_shutdown: bool,
    ) -> Result<(), SpoolError> {
        let max_bytes = if at_shutdown {
            u64::MAX
        } else {
            self.max_bytes
        };
        if ops.is_empty() {
            return Ok(());
        }
        let mut inner = self.lock();
        let mut seq = inner.last_seq;
        let mut buf = Vec::with_capacity(ops.len() * 128);
        for op in ops {
            seq = now_micros.max(seq + 1);
            format::encode(
                &Sequenced {
                    seq,
                    op: op.clone(),
                    epoch,
                },
                &mut buf,
            )?;
        }
        let used = inner.len + buf.len() as u64;
        if used > max_bytes {
            return Err(SpoolError::Full {
                used: inner.len,
                max: max_bytes,
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
    /// I/O errors, or a record that cannot be read (never skipped: the
    /// applier stops there, loudly, instead of losing what follows).
    pub fn read_batch(&self, max: usize) -> Result<Batch, SpoolError> {
        let inner = self.lock();
        let mut records: Vec<Sequenced> = Vec::new();
        let mut pos = inner.read_pos;
        while records.len() < max {
            let same = |r: &Sequenced| records.first().is_none_or(|f| f.epoch == r.epoch);
            match format::read::<Sequenced>(&inner.file, pos, inner.len)? {
                // One batch, one epoch (the store fences per epoch).
                Read::Record(rec, next) if same(&rec) => {
                    records.push(rec);
                    pos = next;
                }
                Read::End | Read::Record(..) => break,
                // Everything up to `len` was acknowledged: nothing there may
                // be torn or corrupt while running.
                Read::Torn => {
                    return Err(SpoolError::Corrupt {
                        path: self.path.clone(),
                        offset: pos,
                        reason: "record cut short".into(),
                    })
                }
                Read::Corrupt { offset, reason } => {
                    return Err(SpoolError::Corrupt {
                        path: self.path.clone(),
                        offset,
                        reason,
                    })
                }
            }
        }
        Ok(Batch { records, end: pos })
    }

    /// Marks a batch as applied. When everything written has been applied the
    /// file is emptied down to its header.
    ///
    /// # Errors
    /// I/O errors truncating or compacting the file.
    pub fn commit(&self, batch: &Batch) -> io::Result<()> {
        let mut inner = self.lock();
        inner.read_pos = inner.read_pos.max(batch.end);
        inner.pending = inner.pending.saturating_sub(batch.records.len() as u64);
        if inner.read_pos >= inner.len {
            // Remember the last seq before the file forgets it.
            self.save_seq_floor(inner.last_seq)?;
            inner.file.set_len(HEADER_LEN)?;
            // The file is empty now, whatever the sync below says: appends
            // must start right after the header or the next start would
            // find a hole.
            inner.len = HEADER_LEN;
            inner.read_pos = HEADER_LEN;
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
    /// crash at any point leaves either the old or the new file whole. The
    /// state switches to the new file right after the rename, so a later
    /// failure never leaves appends going to the unlinked old file.
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
        file.write_all_at(&format::header(), 0)?;
        file.write_all_at(&tail, HEADER_LEN)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        let dropped = inner.read_pos - HEADER_LEN;
        inner.file = file;
        inner.len = HEADER_LEN + tail_len as u64;
        inner.read_pos = HEADER_LEN;
        tracing::debug!(
            dropped_bytes = dropped,
            kept_bytes = tail_len,
            "spool compacted"
        );
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
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

#[cfg(test)]
mod tests;
