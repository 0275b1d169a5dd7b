//! Re-applying dead letters: an op one document refused, applied to that
//! document once the operator fixed it. The document may have taken newer
//! ops meanwhile, so the sequence guard cannot tell whether this one was
//! applied; a per-document marker of re-applied sequence numbers can: the
//! statement matches only a document without this op's number in
//! `dead_letters_applied`, and adds it there.

use mongodb::bson::{doc, RawArrayBuf, RawDocumentBuf};

use super::apply::write_errors;
use super::schema::{seq_bson, DUPLICATE_KEY, VOICE_SESSIONS, WRITTEN};
use super::statements::{DocOps, Mark};
use super::{Store, StoreError};
use crate::durable::op::Sequenced;

/// What re-applying a dead letter did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retried {
    /// Applied now.
    Applied,
    /// An earlier retry applied it.
    AppliedBefore,
    /// A checkpoint older than the one the document holds: the newer one
    /// stands (the last checkpoint wins).
    Superseded,
}

impl Store {
    /// Applies `op` (sequence number `seq`) to document `document` of
    /// `collection`, at most once.
    ///
    /// # Errors
    /// An unknown collection, the server is unreachable, the write concern
    /// was not met, or the document still refuses the op (the message says
    /// why).
    pub async fn apply_dead_letter(
        &self,
        seq: u64,
        op: &crate::durable::op::Op,
        collection: &str,
        document: &str,
    ) -> Result<Retried, StoreError> {
        let coll = WRITTEN
            .into_iter()
            .find(|c| *c == collection)
            .ok_or_else(|| {
                StoreError::Permanent(format!(
                    "unknown collection {collection:?} in a dead letter"
                ))
            })?;
        let rec = Sequenced {
            seq,
            op: op.clone(),
            epoch: 0,
        };
        let ops = DocOps {
            coll,
            id: document.to_owned(),
            ops: vec![&rec],
            rolled: false,
        };
        // A checkpoint replaces the document: only if it is newer than the
        // one there (the sequence guard as on the normal path).
        let checkpoint = coll == VOICE_SESSIONS;
        if checkpoint {
            return match self
                .update_one_statement(coll, ops.statement())
                .await?
                .first()
            {
                None => Ok(Retried::Applied),
                Some((_, DUPLICATE_KEY, _)) => Ok(Retried::Superseded),
                Some((_, code, msg)) => Err(StoreError::Permanent(format!(
                    "{coll}/{document} still refuses it (code {code}): {msg}"
                ))),
            };
        }
        // The document's own sequence stays as it is; the marker says the
        // letter was applied.
        let statement = ops.statement_guarded(
            doc! { "_id": document, "dead_letters_applied": { "$ne": seq_bson(seq) } },
            Mark::Add("dead_letters_applied", seq_bson(seq).into()),
        );
        match self.update_one_statement(coll, statement).await?.first() {
            None => Ok(Retried::Applied),
            // The marker is there: applied by an earlier retry.
            Some((_, DUPLICATE_KEY, _)) => Ok(Retried::AppliedBefore),
            Some((_, code, msg)) => Err(StoreError::Permanent(format!(
                "{coll}/{document} still refuses it (code {code}): {msg}"
            ))),
        }
    }

    /// Sends one update statement; its write errors (`writeConcernError`
    /// is an error: the write may yet be rolled back).
    pub(super) async fn update_one_statement(
        &self,
        coll: &str,
        statement: RawDocumentBuf,
    ) -> Result<Vec<(usize, i32, String)>, StoreError> {
        let mut statements = RawArrayBuf::new();
        statements.push(statement);
        let reply = self
            .command_raw(self.update_command(coll, statements))
            .await?;
        check_write_concern(&reply, coll)?;
        Ok(write_errors(&reply))
    }
}

/// A `writeConcernError` means the write may yet be rolled back: not done.
fn check_write_concern(reply: &mongodb::bson::Document, coll: &str) -> Result<(), StoreError> {
    match reply.get_document("writeConcernError") {
        Ok(wce) => Err(StoreError::Transient(format!(
            "write concern not satisfied on {coll}: {}",
            wce.get_str("errmsg").unwrap_or_default()
        ))),
        Err(_) => Ok(()),
    }
}
