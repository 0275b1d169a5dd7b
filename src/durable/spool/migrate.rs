//! Spools of other format versions in `SPOOL_DIR`: a format-1 spool is moved
//! into the current file; a newer format is refused, untouched.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::format::{self, HEADER_LEN, VERSION};
use super::{sync_dir, SpoolError, LEGACY_FILE_NAME};

/// Moves the records of a format-1 spool (`spool.log`, left by an older
/// version, or by a rollback to one) to the end of the current file, then
/// removes it. The move is one append, so after a crash either all of them
/// are in the current file (and the old file is only removed) or none.
pub(super) fn legacy(
    dir: &Path,
    file: &File,
    path: &Path,
    scan: &mut format::Scan,
) -> Result<(), SpoolError> {
    let legacy_path = dir.join(LEGACY_FILE_NAME);
    let legacy = match File::open(&legacy_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut records = Vec::new();
    let found =
        format::scan(&legacy, 0, |r| records.push(r.clone())).map_err(|(offset, reason)| {
            SpoolError::Corrupt {
                path: legacy_path.clone(),
                offset,
                reason,
            }
        })?;
    let (Some(first), true) = (found.first_seq, found.count > 0) else {
        return remove_legacy(dir, &legacy_path);
    };
    if scan.count > 0 && first <= scan.last_seq {
        // Already moved by a start that crashed before removing the old file?
        let mut moved = false;
        format::scan(file, HEADER_LEN, |r| moved |= r.seq == first).map_err(
            |(offset, reason)| SpoolError::Corrupt {
                path: path.to_owned(),
                offset,
                reason,
            },
        )?;
        if !moved {
            return Err(SpoolError::Overlap {
                legacy: legacy_path,
                current: path.to_owned(),
            });
        }
        // A start that crashed while moving them: some are there (a torn
        // tail cut the rest); move only those after the last one there.
        records.retain(|r| r.seq > scan.last_seq);
        if records.is_empty() {
            return remove_legacy(dir, &legacy_path);
        }
    }
    let mut buf = Vec::new();
    for r in &records {
        format::encode(r, &mut buf)?;
    }
    file.write_all_at(&buf, scan.end)?;
    file.sync_all()?;
    scan.end += buf.len() as u64;
    scan.count += records.len() as u64;
    scan.last_seq = scan.last_seq.max(found.last_seq);
    tracing::info!(
        records = records.len(),
        from = %legacy_path.display(),
        to = %path.display(),
        "moved a spool of format v1 into the current spool"
    );
    remove_legacy(dir, &legacy_path)
}

/// A spool file of a newer format (`spool-vN.log`, N > this version's) that
/// still holds records: a rollback must not start next to it as if it were
/// not there.
pub(super) fn refuse_newer_formats(dir: &Path) -> Result<(), SpoolError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(version) = name
            .to_str()
            .and_then(|n| n.strip_prefix("spool-v")?.strip_suffix(".log"))
            .and_then(|v| v.parse::<u32>().ok())
        else {
            continue;
        };
        if version > u32::from(VERSION) && entry.metadata()?.len() > HEADER_LEN {
            return Err(SpoolError::Unsupported {
                path: entry.path(),
                found: format!("spool format v{version}"),
            });
        }
    }
    Ok(())
}

fn remove_legacy(dir: &Path, legacy: &Path) -> Result<(), SpoolError> {
    std::fs::remove_file(legacy)?;
    sync_dir(dir)?;
    Ok(())
}
