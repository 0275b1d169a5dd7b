//! The spool's errors: each says what it means for members' numbers and
//! what to do.

use std::io;
use std::path::PathBuf;

use super::format::VERSION;

/// What went wrong with the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool is full ({used} of {max} bytes); increments wait until MongoDB drains it")]
    Full { used: u64, max: u64 },
    #[error(
        "spool file {} has an unreadable record at byte {offset} ({reason}); nothing was cut. \
         It may hold increments MongoDB does not have yet: start the study-tracker version that \
         wrote it (after a rollback, the newer one) until the spool drains, or move the file aside \
         to start without those increments (they are then lost)",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error(
        "spool file {} is not one this version can read ({found}; this version reads spool \
         format v1 and v{VERSION}); nothing was changed. Start the study-tracker version that \
         wrote it until the spool drains, then roll back",
        path.display()
    )]
    Unsupported { path: PathBuf, found: String },
    #[error(
        "{} and {} overlap in sequence numbers (a host clock behind the previous one?); \
         nothing was changed. Apply one of them with the version that wrote it first",
        legacy.display(),
        current.display()
    )]
    Overlap { legacy: PathBuf, current: PathBuf },
    #[error(
        "SPOOL_DIR {} is in use by another study-tracker process (two processes must never share a spool); give each its own SPOOL_DIR",
        dir.display()
    )]
    InUse { dir: PathBuf },
    #[error("spool I/O error: {0}")]
    Io(#[from] io::Error),
}
