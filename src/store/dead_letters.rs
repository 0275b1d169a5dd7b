//! Re-applying dead letters: an op one document refused, applied to that
//! document once the operator fixed it. The document may have taken newer
//! ops meanwhile, so the sequence guard cannot tell whether this one was
//! applied; a per-document marker of re-applied sequence numbers can: the
//! statement matches only a document without this op's number in
//! `dead_letters_applied`, and adds it there.

use mongodb::bson::doc;

use super::apply::write_errors;
use super::schema::{
    seq_bson, DUPLICATE_KEY, MEMBER_DAYS, MEMBER_STATS, VOICE_SEGMENTS, VOICE_SESSIONS,
};
use super::statements::DocOps;
use super::{Store, StoreError};
use crate::durable::op::Sequenced;

impl Store {
    /// Applies `op` (sequence number `seq`) to document `document` of
    /// `collection`, once. Returns false when it was applied before.
    ///
    /// # Errors
    /// An unknown collection, the server is unreachable, or the document
    /// still refuses the op (the message says why).
    pub async fn apply_dead_letter(
        &self,
        seq: u64,
        op: &crate::durable::op::Op,
        collection: &str,
        document: &str,
    ) -> Result<bool, StoreError> {
        let coll = [MEMBER_STATS, MEMBER_DAYS, VOICE_SEGMENTS, VOICE_SESSIONS]
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
        };
        let ops = DocOps {
            coll,
            id: document.to_owned(),
            ops: vec![&rec],
        };
        let mut statement = ops.statement();
        if let Ok(u) = statement.get_document_mut("u") {
            if let Ok(set) = u.get_document_mut("$set") {
                // The document's own sequence stays as it is.
                set.remove("seq");
            }
            u.insert("$addToSet", doc! { "dead_letters_applied": seq_bson(seq) });
        }
        statement.insert(
            "q",
            doc! { "_id": document, "dead_letters_applied": { "$ne": seq_bson(seq) } },
        );
        let reply = self
            .command(doc! {
                "update": coll,
                "updates": [statement],
                "writeConcern": { "w": self.write_concern.clone() },
            })
            .await?;
        match write_errors(&reply).first() {
            None => Ok(true),
            // The marker is there: applied by an earlier retry.
            Some((_, DUPLICATE_KEY, _)) => Ok(false),
            Some((_, code, msg)) => Err(StoreError::Permanent(format!(
                "{coll}/{document} still refuses it (code {code}): {msg}"
            ))),
        }
    }
}
