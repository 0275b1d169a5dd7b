//! What the lease's fence and the write gate look like inside a batch
//! apply: the guard asked before every command, and the ops a document
//! refuses as fenced, told apart from a poison document's refusals.

use super::apply::FailedWrite;
use super::error::PER_DOCUMENT_CODES;
use super::StoreError;
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
