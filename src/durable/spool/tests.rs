use std::io::Write as _;

use super::*;

fn msg(user: u64) -> Op {
    Op::Message {
        guild: 1,
        user,
        day: "2026-01-01".into(),
        count: 1,
        max_id: None,
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
    assert_eq!(
        spool.usage(),
        SpoolUsage {
            bytes: HEADER_LEN,
            pending_records: 0
        }
    );
    assert_eq!(std::fs::metadata(spool.path()).unwrap().len(), HEADER_LEN);
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
        assert_eq!(spool.usage().bytes, HEADER_LEN);
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

/// Appends raw bytes to a spool file (what a crash, a bad disk or another
/// version leaves behind).
fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// One record whose checksum is valid but whose payload is not a record this
/// version knows (a newer `Op` variant, say).
fn foreign_record() -> Vec<u8> {
    let payload = br#"{"seq":999999999,"op":{"t":"x","g":1,"u":2}}"#;
    let mut rec = Vec::new();
    rec.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    rec.extend_from_slice(payload);
    rec
}

fn spool_with(dir: &Path, users: &[u64]) -> PathBuf {
    let spool = Spool::open(dir, 1 << 20).unwrap();
    let ops: Vec<Op> = users.iter().copied().map(msg).collect();
    spool.append(&ops, 100).unwrap();
    spool.path().to_owned()
}

#[test]
fn a_record_that_does_not_decode_stops_start_up_and_nothing_is_cut() {
    for at_the_end in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = spool_with(dir.path(), &[1]);
        append_raw(&path, &foreign_record());
        if !at_the_end {
            let more = Spool::open(dir.path(), 1 << 20);
            assert!(more.is_err(), "opened over an unreadable record");
            let mut buf = Vec::new();
            format::encode(
                &Sequenced {
                    seq: 5_000_000_000,
                    op: msg(2),
                    epoch: 0,
                },
                &mut buf,
            )
            .unwrap();
            append_raw(&path, &buf);
        }
        let before = std::fs::read(&path).unwrap();
        let err = Spool::open(dir.path(), 1 << 20).unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("at byte"),
            "{err}"
        );
        assert!(err.contains("nothing was cut"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file was changed"
        );
    }
}

#[test]
fn a_bad_checksum_is_a_torn_tail_only_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = spool_with(dir.path(), &[1, 2, 3]);
    let len = std::fs::metadata(&path).unwrap().len();
    // Flip a byte in the middle record's payload: records after it are whole.
    let mut bytes = std::fs::read(&path).unwrap();
    let second = usize::try_from(HEADER_LEN).unwrap() + (bytes.len() - 8) / 3;
    bytes[second + 20] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = Spool::open(dir.path(), 1 << 20).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file was changed");

    // The same damage in the last record of the last write is a torn tail.
    let dir = tempfile::tempdir().unwrap();
    let path = spool_with(dir.path(), &[1, 2, 3]);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.usage().pending_records, 2);
    assert!(std::fs::metadata(&path).unwrap().len() < len);
}

#[test]
fn an_unreadable_record_while_running_stops_the_reader_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(&[msg(1), msg(2)], 100).unwrap();
    // The disk damages the first record after it was acknowledged.
    let mut bytes = std::fs::read(spool.path()).unwrap();
    bytes[usize::try_from(HEADER_LEN).unwrap() + 12] ^= 0xff;
    std::fs::write(spool.path(), &bytes).unwrap();
    let err = spool.read_batch(10).unwrap_err();
    assert!(
        matches!(err, SpoolError::Corrupt { offset: 8, .. }),
        "{err}"
    );
}

#[test]
fn a_format_1_spool_is_read_and_moved_once() {
    let dir = tempfile::tempdir().unwrap();
    // `spool.log` as the first releases wrote it: records, no header.
    let mut legacy = Vec::new();
    for (seq, user) in [(10, 1), (11, 2)] {
        format::encode(
            &Sequenced {
                seq,
                op: msg(user),
                epoch: 0,
            },
            &mut legacy,
        )
        .unwrap();
    }
    let legacy_path = dir.path().join(LEGACY_FILE_NAME);
    std::fs::write(&legacy_path, &legacy).unwrap();
    {
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let batch = spool.read_batch(10).unwrap();
        let seqs: Vec<u64> = batch.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![10, 11]);
        assert!(!legacy_path.exists());
    }
    // A start that crashed after moving the records but before removing the
    // old file: the records are not moved twice.
    std::fs::write(&legacy_path, &legacy).unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.usage().pending_records, 2);
    assert!(!legacy_path.exists());
    spool.append(&[msg(3)], 0).unwrap();
    assert_eq!(spool.read_batch(10).unwrap().records[2].seq, 12);
}

#[test]
fn a_spool_of_a_newer_format_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("spool-v3.log");
    std::fs::write(&newer, b"STSPOOL\x03 some records").unwrap();
    let err = Spool::open(dir.path(), 1 << 20).unwrap_err().to_string();
    assert!(
        err.contains("spool format v3") && err.contains("spool-v3.log"),
        "{err}"
    );
    assert_eq!(std::fs::read(&newer).unwrap(), b"STSPOOL\x03 some records");

    // The same file under this version's name (a header it does not know).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, b"STSPOOL\x07").unwrap();
    let err = Spool::open(dir.path(), 1 << 20).unwrap_err().to_string();
    assert!(err.contains("spool format v7"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"STSPOOL\x07");
}

#[test]
fn two_opens_of_one_spool_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Spool::open(dir.path(), 1 << 20).unwrap();
    let err = Spool::open(dir.path(), 1 << 20).unwrap_err();
    assert!(matches!(err, SpoolError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("SPOOL_DIR"), "{err}");
    drop(first);
    Spool::open(dir.path(), 1 << 20).unwrap();
}

#[test]
fn a_damaged_length_never_cuts_the_records_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = spool_with(dir.path(), &[1, 2, 3]);
    // The first record's length field says "longer than the file".
    let mut bytes = std::fs::read(&path).unwrap();
    let first = usize::try_from(HEADER_LEN).unwrap();
    bytes[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = Spool::open(dir.path(), 1 << 20).unwrap_err().to_string();
    assert!(err.contains("readable record"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file was changed");
}

#[test]
fn zeros_after_the_last_record_are_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = spool_with(dir.path(), &[1, 2]);
    let good = std::fs::metadata(&path).unwrap().len();
    // The file system extended the file but the write never landed.
    append_raw(&path, &[0u8; 4096]);
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.usage().pending_records, 2);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
}

#[test]
fn a_move_of_a_format_1_spool_cut_by_a_crash_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let legacy_of = |seqs: &[u64]| {
        let mut b = Vec::new();
        for (i, seq) in seqs.iter().enumerate() {
            format::encode(
                &Sequenced {
                    seq: *seq,
                    op: msg(i as u64),
                    epoch: 0,
                },
                &mut b,
            )
            .unwrap();
        }
        b
    };
    let legacy_path = dir.path().join(LEGACY_FILE_NAME);
    // The crashed start moved only the first record (the rest was a torn
    // tail, cut), and the old file is still there, whole.
    std::fs::write(&legacy_path, legacy_of(&[10])).unwrap();
    drop(Spool::open(dir.path(), 1 << 20).unwrap());
    std::fs::write(&legacy_path, legacy_of(&[10, 11, 12])).unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    let seqs: Vec<u64> = spool
        .read_batch(10)
        .unwrap()
        .records
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, vec![10, 11, 12]);
    assert!(!legacy_path.exists());
}
