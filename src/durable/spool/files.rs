//! The spool directory's other files: its lock, and durable directory entries.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{SpoolError, LOCK_FILE_NAME};

/// Takes the spool directory's exclusive lock (released when the process
/// exits, however it exits).
pub(super) fn lock_dir(dir: &Path) -> Result<File, SpoolError> {
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE_NAME))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(SpoolError::InUse {
            dir: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Makes a directory's entries (a created, renamed or removed file) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(super) fn read_seq_floor(path: &Path) -> u64 {
    let mut buf = [0u8; 8];
    match File::open(path).and_then(|f| f.read_exact_at(&mut buf, 0)) {
        Ok(()) => u64::from_le_bytes(buf),
        Err(_) => 0,
    }
}

/// The id in `path`, created (random, synced) if the file is missing or
/// unreadable.
pub(super) fn instance_id(path: &Path) -> io::Result<String> {
    if let Ok(id) = std::fs::read_to_string(path) {
        let id = id.trim();
        if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id.to_owned());
        }
    }
    let id = format!("{:016x}", rand::random::<u64>());
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &id)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(id)
}

/// The last lease epoch this spool directory held (see
/// [`super::Spool::held_epoch`]); `None`: none recorded.
pub(super) fn read_held_epoch(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Records `epoch` in `path` durably (written aside, synced, renamed).
pub(super) fn save_held_epoch(path: &Path, epoch: u64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, epoch.to_string())?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}
