//! The dead-letter file beside the spool: ops a document refused for good
//! (a poison document), kept with the error until an operator fixes the
//! cause and re-applies them (`study-tracker dead-letters --retry`). Same
//! record format as the spool, fsynced; an exclusive file lock keeps the
//! running bot and the CLI from writing it at the same time.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::op::{Op, Sequenced};
use super::spool::format::{self, Header, Read, HEADER_LEN};
use crate::core::Millis;
use crate::store::FailedWrite;

const FILE_NAME: &str = "dead-letters.log";
const FENCED_FILE_NAME: &str = "fenced.log";

/// One op one document refused, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The op's original sequence number.
    pub seq: u64,
    pub op: Op,
    /// Where it failed: the collection and the document's `_id`. The op's
    /// other documents took it.
    pub collection: String,
    pub document: String,
    pub error: String,
    /// When it was set aside (Unix ms).
    pub at: Millis,
}

impl DeadLetter {
    /// The document a letter is for, as `collection/_id`.
    #[must_use]
    pub fn target(&self) -> String {
        format!("{}/{}", self.collection, self.document)
    }
}

/// The dead-letter file of a spool directory.
#[derive(Clone, Debug)]
pub struct DeadLetters {
    path: PathBuf,
}

impl DeadLetters {
    /// The dead-letter file in `spool_dir` (created on first append).
    #[must_use]
    pub fn in_dir(spool_dir: &Path) -> DeadLetters {
        DeadLetters {
            path: spool_dir.join(FILE_NAME),
        }
    }

    /// The file of ops fenced off by a lost lease (`fenced.log`, same
    /// format; never retried by `dead-letters --retry`: another holder
    /// resumed from what MongoDB held, so applying them could count twice).
    #[must_use]
    pub fn fenced_in_dir(spool_dir: &Path) -> DeadLetters {
        DeadLetters {
            path: spool_dir.join(FENCED_FILE_NAME),
        }
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `letters` and fsyncs; returns once they are durable.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn append(&self, letters: &[DeadLetter]) -> io::Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let file = self.open_data()?;
        let mut buf = Vec::new();
        for l in letters {
            format::encode(l, &mut buf)?;
        }
        let end = valid_end(&file, &self.path)?;
        file.write_all_at(&buf, end)?;
        file.set_len(end + buf.len() as u64)?;
        file.sync_all()
    }

    /// Every letter in the file, oldest first (none when there is no file).
    ///
    /// # Errors
    /// The file cannot be read, or holds a record that does not decode.
    pub fn read(&self) -> io::Result<Vec<DeadLetter>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let _lock = self.lock()?;
        read_all(&file, &self.path)
    }

    /// Removes the letters `done` (by sequence number and target), keeping
    /// any appended meanwhile.
    ///
    /// # Errors
    /// The file cannot be read or rewritten.
    pub fn remove(&self, done: &[DeadLetter]) -> io::Result<()> {
        let _lock = self.lock()?;
        let file = self.open_data()?;
        let keep: Vec<DeadLetter> = read_all(&file, &self.path)?
            .into_iter()
            .filter(|l| {
                !done
                    .iter()
                    .any(|d| d.seq == l.seq && d.target() == l.target())
            })
            .collect();
        let mut buf = format::header().to_vec();
        for l in &keep {
            format::encode(l, &mut buf)?;
        }
        // A new file renamed over the old one: a crash leaves one whole file
        // or the other (letters applied again are harmless: re-application
        // is guarded per document). The lock is on a separate file, so the
        // rename does not escape it.
        let tmp = self.path.with_extension("log.rewrite");
        std::fs::write(&tmp, &buf)?;
        File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        sync_parent(&self.path)
    }

    /// How many letters wait from earlier runs; says so loudly if any.
    pub(super) fn waiting_at_start(&self) -> u64 {
        match self.read() {
            Ok(letters) if !letters.is_empty() => {
                tracing::error!(
                    letters = letters.len(),
                    path = %self.path.display(),
                    consequence = "those increments are not in MongoDB; fix the documents, then run `study-tracker dead-letters --retry`",
                    "dead letters from earlier runs are waiting"
                );
                letters.len() as u64
            }
            Ok(_) => 0,
            Err(e) => {
                tracing::error!(error = %crate::telemetry::cause_chain(&e), path = %self.path.display(), "cannot read the dead-letter file");
                0
            }
        }
    }

    /// The exclusive lock shared by the bot and the CLI (a separate file,
    /// so that rewriting the data file by rename stays under it). Released
    /// when the returned file is dropped.
    fn lock(&self) -> io::Result<File> {
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path.with_extension("lock"))?;
        lock.lock()?;
        Ok(lock)
    }

    /// The data file, with its header (call under the lock).
    fn open_data(&self) -> io::Result<File> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)?;
        if matches!(format::read_header(&file)?, Header::Empty | Header::Torn) {
            file.set_len(0)?;
            file.write_all_at(&format::header(), 0)?;
            file.sync_all()?;
            sync_parent(&self.path)?;
        }
        Ok(file)
    }
}

/// Sets aside the ops of `failed` documents from `batch`: appended to the
/// dead-letter file (durable before the batch leaves the spool), one error
/// line each. Returns how many letters were written.
///
/// # Errors
/// The dead-letter file cannot be written: the batch must then stay in the
/// spool (it is retried, and fails the same way, until the disk is fixed).
pub(super) async fn set_aside(
    dead: &DeadLetters,
    batch: &[Sequenced],
    failed: &[FailedWrite],
) -> io::Result<u64> {
    let at = chrono::Utc::now().timestamp_millis();
    let mut letters = Vec::new();
    for f in failed {
        tracing::error!(
            collection = f.collection,
            document = %f.document,
            ops = f.seqs.len(),
            error = %f.error,
            dead_letters = %dead.path().display(),
            consequence = "these increments wait in the dead-letter file; fix the document, then run `study-tracker dead-letters --retry`",
            "a document refused its increments for good"
        );
        for seq in &f.seqs {
            if let Some(rec) = batch.iter().find(|r| r.seq == *seq) {
                letters.push(DeadLetter {
                    seq: *seq,
                    op: rec.op.clone(),
                    collection: f.collection.to_owned(),
                    document: f.document.clone(),
                    error: f.error.clone(),
                    at,
                });
            }
        }
    }
    let n = letters.len() as u64;
    let dead = dead.clone();
    tokio::task::spawn_blocking(move || dead.append(&letters))
        .await
        .map_err(io::Error::other)??;
    Ok(n)
}

/// The end of the last whole record (a torn tail is overwritten; a corrupt
/// record is an error, never overwritten).
fn valid_end(file: &File, path: &Path) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut pos = HEADER_LEN;
    loop {
        match format::read::<DeadLetter>(file, pos, len)? {
            Read::Record(_, next) => pos = next,
            Read::End | Read::Torn => return Ok(pos),
            Read::Corrupt { offset, reason } => {
                return Err(io::Error::other(format!(
                    "{} has an unreadable record at byte {offset} ({reason}); nothing was written",
                    path.display()
                )))
            }
        }
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn read_all(file: &File, path: &Path) -> io::Result<Vec<DeadLetter>> {
    match format::read_header(file)? {
        Header::Current => {}
        Header::Empty | Header::Torn => return Ok(Vec::new()),
        Header::Other(found) => {
            return Err(io::Error::other(format!(
                "{} is not a dead-letter file this version reads ({found})",
                path.display()
            )))
        }
    }
    let len = file.metadata()?.len();
    let mut pos = HEADER_LEN;
    let mut out = Vec::new();
    loop {
        match format::read::<DeadLetter>(file, pos, len)? {
            Read::Record(l, next) => {
                out.push(l);
                pos = next;
            }
            Read::End | Read::Torn => return Ok(out),
            Read::Corrupt { offset, reason } => {
                return Err(io::Error::other(format!(
                    "{} has an unreadable record at byte {offset} ({reason})",
                    path.display()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(seq: u64) -> DeadLetter {
        DeadLetter {
            seq,
            op: Op::Message {
                guild: 1,
                user: 2,
                day: "2026-11-26".into(),
                count: 1,
                max_id: None,
            },
            collection: "member_stats".into(),
            document: "1:2".into(),
            error: "type mismatch".into(),
            at: 0,
        }
    }

    #[test]
    fn letters_are_appended_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dl = DeadLetters::in_dir(dir.path());
        assert!(dl.read().unwrap().is_empty());
        dl.append(&[letter(1), letter(2)]).unwrap();
        dl.append(&[letter(3)]).unwrap();
        assert_eq!(dl.read().unwrap(), vec![letter(1), letter(2), letter(3)]);
        dl.remove(&[letter(2)]).unwrap();
        assert_eq!(dl.read().unwrap(), vec![letter(1), letter(3)]);
        // A crash in the middle of an append: the torn tail is overwritten.
        let len = std::fs::metadata(dl.path()).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(dl.path())
            .unwrap()
            .write_all_at(&[40, 0, 0, 0, 1], len)
            .unwrap();
        dl.append(&[letter(4)]).unwrap();
        assert_eq!(dl.read().unwrap(), vec![letter(1), letter(3), letter(4)]);
    }
}
