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
