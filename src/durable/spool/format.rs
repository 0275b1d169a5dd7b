//! The spool's bytes: a file header with the format version, then records.
//!
//! - Header (format 2 on): `b"STSPOOL"` then the version byte. Format 1 (the
//!   first releases) had no header and lives in `spool.log`; format 2 lives in
//!   `spool-v2.log`, so an older binary never sees (and never cuts) a newer
//!   spool.
//! - Record: `len: u32 LE`, `crc32(payload): u32 LE`, `payload` (JSON of
//!   [`Sequenced`]).
//!
//! Reading tells a torn tail (the last write never completed: it was never
//! acknowledged and may be cut) from a corrupt or unreadable record (which
//! must never be cut: it may hold increments MongoDB does not have yet).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durable::op::Sequenced;

/// The format this binary writes.
pub(crate) const VERSION: u8 = 2;
const MAGIC: &[u8; 7] = b"STSPOOL";
/// Bytes before the first record of a format-2 file.
pub(crate) const HEADER_LEN: u64 = 8;
/// Bytes before each record's payload.
const RECORD_HEADER: u64 = 8;

/// The header of a new file.
pub(crate) fn header() -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..7].copy_from_slice(MAGIC);
    h[7] = VERSION;
    h
}

/// Appends one record for `rec` to `buf`.
pub(crate) fn encode<T: Serialize>(rec: &T, buf: &mut Vec<u8>) -> io::Result<()> {
    let payload = serde_json::to_vec(rec).map_err(io::Error::other)?;
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    buf.extend_from_slice(&payload);
    Ok(())
}

/// What the header of an existing file says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// A new, empty file.
    Empty,
    /// The header this binary writes.
    Current,
    /// Only part of the header was written (a crash right after creation).
    Torn,
    /// Another format version, or not a spool file at all.
    Other(String),
}

pub(crate) fn read_header(file: &File) -> io::Result<Header> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Header::Empty);
    }
    let mut h = [0u8; 8];
    let n = usize::try_from(len.min(HEADER_LEN)).unwrap_or(8);
    file.read_exact_at(&mut h[..n], 0)?;
    if n < 8 {
        return Ok(if MAGIC.starts_with(&h[..n.min(7)]) {
            Header::Torn
        } else {
            Header::Other("not a study-tracker spool file".into())
        });
    }
    if &h[..7] != MAGIC {
        return Ok(Header::Other("not a study-tracker spool file".into()));
    }
    Ok(if h[7] == VERSION {
        Header::Current
    } else {
        Header::Other(format!("spool format v{}", h[7]))
    })
}

/// One step of reading records.
#[derive(Debug)]
pub(crate) enum Read<T> {
    /// A record and the offset of the next one.
    Record(T, u64),
    /// Nothing more: the end of the file.
    End,
    /// The last write never completed from here on: safe to cut.
    Torn,
    /// A complete record that cannot be used: never cut.
    Corrupt { offset: u64, reason: String },
}

/// Reads the record at `pos` of a file whose valid bytes end at `len`.
pub(crate) fn read<T: DeserializeOwned>(file: &File, pos: u64, len: u64) -> io::Result<Read<T>> {
    if pos >= len {
        return Ok(Read::End);
    }
    if pos + RECORD_HEADER > len {
        return Ok(Read::Torn);
    }
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, pos)?;
    let size = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let next = pos + RECORD_HEADER + size;
    // No record is empty (the payload is a JSON object): zeros are a tail
    // the file system extended but never wrote, like a short record.
    if size == 0 || next > len {
        return Ok(Read::Torn);
    }
    let mut payload = vec![0u8; usize::try_from(size).map_err(io::Error::other)?];
    file.read_exact_at(&mut payload, pos + RECORD_HEADER)?;
    if crc32fast::hash(&payload) != crc {
        // Only the last write can be incomplete: if a readable record
        // follows, this one was damaged after it was acknowledged.
        return Ok(if readable_after(file, next, len)? {
            Read::Corrupt {
                offset: pos,
                reason: "checksum mismatch".into(),
            }
        } else {
            Read::Torn
        });
    }
    // A valid checksum means these bytes are what was written: a record that
    // does not decode is from another version, never a torn write.
    match serde_json::from_slice(&payload) {
        Ok(rec) => Ok(Read::Record(rec, next)),
        Err(e) => Ok(Read::Corrupt {
            offset: pos,
            reason: format!("cannot decode: {e}"),
        }),
    }
}

/// Whether a record with a valid checksum starts at `pos`.
fn readable_after(file: &File, pos: u64, len: u64) -> io::Result<bool> {
    if pos + RECORD_HEADER > len {
        return Ok(false);
    }
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, pos)?;
    let size = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if pos + RECORD_HEADER + size > len {
        return Ok(false);
    }
    let mut payload = vec![0u8; usize::try_from(size).map_err(io::Error::other)?];
    file.read_exact_at(&mut payload, pos + RECORD_HEADER)?;
    Ok(crc32fast::hash(&payload) == crc)
}

/// What a walk over a file's records found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// End of the last good record (where a torn tail starts).
    pub end: u64,
    pub count: u64,
    pub first_seq: Option<u64>,
    pub last_seq: u64,
}

/// Walks the records from `start`, handing each to `visit`. A torn tail
/// ends the walk; a corrupt record is an error naming its offset.
pub(super) fn scan(
    file: &File,
    start: u64,
    mut visit: impl FnMut(&Sequenced),
) -> Result<Scan, (u64, String)> {
    let len = file.metadata().map_err(|e| (start, e.to_string()))?.len();
    let mut s = Scan {
        end: start,
        ..Scan::default()
    };
    loop {
        match read::<Sequenced>(file, s.end, len).map_err(|e| (s.end, e.to_string()))? {
            Read::Record(rec, next) => {
                s.count += 1;
                s.first_seq.get_or_insert(rec.seq);
                s.last_seq = s.last_seq.max(rec.seq);
                visit(&rec);
                s.end = next;
            }
            Read::End => return Ok(s),
            Read::Torn => {
                // Only the last write can be torn: a readable record after
                // this point means the damage hit acknowledged records (a
                // bad length field, a bad sector), and nothing may be cut.
                if let Some(at) =
                    readable_record_after(file, s.end, len).map_err(|e| (s.end, e.to_string()))?
                {
                    return Err((
                        s.end,
                        format!("damaged record, with a readable record at byte {at} after it"),
                    ));
                }
                return Ok(s);
            }
            Read::Corrupt { offset, reason } => return Err((offset, reason)),
        }
    }
}

/// The offset of the first readable record strictly after `from` (any
/// alignment), reading the rest of the file once.
fn readable_record_after(file: &File, from: u64, len: u64) -> io::Result<Option<u64>> {
    let start = from + 1;
    if start >= len {
        return Ok(None);
    }
    let mut tail = vec![0u8; usize::try_from(len - start).map_err(io::Error::other)?];
    file.read_exact_at(&mut tail, start)?;
    let header = usize::try_from(RECORD_HEADER).unwrap_or(8);
    for off in 0..tail.len().saturating_sub(header) {
        let h = &tail[off..off + header];
        let size = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let Some(payload) = tail.get(off + header..off + header + size) else {
            continue;
        };
        if size == 0 || payload[0] != b'{' || crc32fast::hash(payload) != crc {
            continue;
        }
        if serde_json::from_slice::<Sequenced>(payload).is_ok() {
            return Ok(Some(start + off as u64));
        }
    }
    Ok(None)
}
