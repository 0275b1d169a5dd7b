//! What the lease's fence and the write gate look like inside a batch
//! apply: the guard asked before every command, and the ops a document
//! refuses as fenced, told apart from a poison document's refusals.

use std::collections::{HashMap, HashSet};

use super::apply::FailedWrite;
use super::error::PER_DOCUMENT_CODES;
use super::schema::{MEMBER_STATS, VOICE_SESSIONS};
use super::statements::group;
use super::{Store, StoreError};
use crate::durable::op::Sequenced;

/// [`FailedWrite::code`] of ops a document refused because a newer lease
/// epoch wrote it (fenced, not a poison document: never retried).
pub const FENCED: i32 = -1;

/// Asked before every command a batch sends, re-sends included: `false`
/// stops the attempt there (the lease holder's validity lapsed, or its
/// epoch was fenced), before the command goes out.
#[derive(Clone)]
pub struct WriteGuard(std::sync::Arc<dyn Fn() -> bool + Send + Sync>);

impl WriteGuard {
    pub fn new(allows: impl Fn() -> bool + Send + Sync + 'static) -> WriteGuard {
        WriteGuard(std::sync::Arc::new(allows))
    }

    /// `guard`, waived once `started` is set: the rest of a batch whose
    /// resume points are written is finished, not stopped (its statements
    /// still carry the epoch, so the store fence refuses them on every
    /// document a newer holder wrote).
    pub(super) fn waived_once_started(
        guard: Option<WriteGuard>,
        started: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Option<WriteGuard> {
        let started = started.clone();
        guard.map(|g| {
            WriteGuard::new(move || started.load(std::sync::atomic::Ordering::SeqCst) || (g.0)())
        })
    }

    pub(super) fn check(guard: Option<&WriteGuard>) -> Result<(), StoreError> {
        match guard {
            Some(g) if !(g.0)() => Err(StoreError::Transient(
                "writes paused: this instance's lease is not known valid".into(),
            )),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for WriteGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteGuard")
    }
}

/// The ops `ops` refused by document `id` of `coll`, written at the newer
/// lease epoch `doc_epoch`.
pub(super) fn fenced_write(
    coll: &'static str,
    id: &str,
    ops: &[&Sequenced],
    doc_epoch: u64,
) -> FailedWrite {
    FailedWrite {
        collection: coll,
        document: id.to_owned(),
        seqs: ops.iter().map(|o| o.seq).collect(),
        code: FENCED,
        error: format!("refused: the document was written at lease epoch {doc_epoch}, a newer one"),
    }
}

/// Whether the documents sent alone (`alone` of them) all refused their
/// write the same way, with a code that is not about one document's
/// content: then it is about the collection or the server, and all writes
/// hold instead of being set aside one by one.
/// (Fenced ops are not refusals: they are left out.)
pub(super) fn about_the_collection(failed: &[FailedWrite], alone: usize) -> bool {
    let refused: Vec<&FailedWrite> = failed.iter().filter(|f| f.code != FENCED).collect();
    alone > 1
        && refused.len() == alone
        && refused.windows(2).all(|w| w[0].code == w[1].code)
        && !PER_DOCUMENT_CODES.contains(&refused[0].code)
}

/// The error of the first refusal among `failed` that is not a fence.
pub(super) fn first_refusal(failed: &[FailedWrite]) -> &str {
    failed
        .iter()
        .find(|f| f.code != FENCED)
        .map_or("", |f| f.error.as_str())
}

impl Store {
    /// For each of `ops` (fenced ops of one lease epoch above 0), whether
    /// MongoDB holds it at its resume point (its `member_stats` document; a
    /// checkpoint's `voice_sessions`): `Some(true)` that document is at the
    /// op's epoch and at its `seq` or past it (applied: a document's ops
    /// apply in `seq` order), `Some(false)` not, `None` a newer epoch wrote
    /// it since (cannot tell).
    ///
    /// # Errors
    /// A read failed.
    pub async fn held_at_resume_points(
        &self,
        ops: &[Sequenced],
    ) -> Result<Vec<Option<bool>>, StoreError> {
        let mut held: HashMap<u64, Option<bool>> = HashMap::new();
        for (coll, docs) in group(ops, &HashSet::new()) {
            if coll != MEMBER_STATS && coll != VOICE_SESSIONS {
                continue;
            }
            let seqs = self.doc_seqs(coll, &docs).await?;
            for d in &docs {
                let (seq, epoch) = seqs.get(&d.id).copied().unwrap_or((0, 0));
                for o in &d.ops {
                    let verdict = (epoch <= o.epoch).then_some(epoch == o.epoch && seq >= o.seq);
                    held.insert(o.seq, verdict);
                }
            }
        }
        Ok(ops
            .iter()
            .map(|o| held.get(&o.seq).copied().unwrap_or(Some(false)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FailedWrite;

    fn refused(code: i32) -> FailedWrite {
        FailedWrite {
            collection: "member_stats",
            document: "1:2".into(),
            seqs: vec![1],
            code,
            error: String::new(),
        }
    }

    #[test]
    fn only_a_collection_wide_refusal_holds_all_writes() {
        // A quota-like error on every document: hold.
        assert!(about_the_collection(&[refused(9999), refused(9999)], 2));
        // Two legacy documents with a type mismatch: per document.
        assert!(!about_the_collection(&[refused(14), refused(14)], 2));
        // Some documents took their writes: per document.
        assert!(!about_the_collection(&[refused(9999)], 2));
        // Different reasons: per document.
        assert!(!about_the_collection(&[refused(9999), refused(9998)], 2));
        // One document alone tells nothing about the others.
        assert!(!about_the_collection(&[refused(9999)], 1));
    }
}
