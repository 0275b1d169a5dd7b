//! The pending handoff (review F14): a holder handing over records where it
//! stopped (`handoff_pending` on the lease document, and its message ids)
//! once its intake is closed and everything it counted is in its spool,
//! before it drains. If the release then never succeeds (a primary stepping
//! down, MongoDB out of reach, a drain that does not finish), the taker at
//! the expiry still starts from that point: voice replayed from the
//! holder's stop, messages by the ids it counted, not from the expiry.

use mongodb::bson::{doc, DateTime, Document};

use super::{Handoff, HandoffIds, HANDOFF_IDS, LEASE, LEASE_WRITE_CONCERN};
use crate::store::schema::{int, seq_bson, to_i64, META};
use crate::store::{Store, StoreError};

/// A handoff as stored (`{snowflake, at, seq}`).
pub(super) fn handoff_doc(h: Handoff) -> Document {
    doc! {
        "snowflake": to_i64(h.snowflake),
        "at": DateTime::from_millis(h.at),
        "seq": seq_bson(h.seq),
    }
}

/// A stored handoff.
pub(super) fn handoff_of(h: &Document) -> Handoff {
    Handoff {
        snowflake: u64::try_from(int(h, "snowflake")).unwrap_or(0),
        at: h.get_datetime("at").map_or(0, |t| t.timestamp_millis()),
        seq: u64::try_from(int(h, "seq")).unwrap_or(0),
    }
}

impl Store {
    /// Writes the message ids the holder at `epoch` accounted for (their
    /// own document: the lease document standbys read every 250 ms stays
    /// small).
    pub(super) async fn write_handoff_ids(
        &self,
        epoch: u64,
        ids: &HandoffIds,
    ) -> Result<(), StoreError> {
        let counted: Vec<i64> = ids.ids.iter().map(|&id| to_i64(id)).collect();
        self.command(doc! {
            "update": META,
            "updates": [{
                "q": { "_id": HANDOFF_IDS },
                "u": { "$set": {
                    "epoch": to_i64(epoch),
                    "floor": to_i64(ids.floor),
                    "ids": counted,
                } },
                "upsert": true,
            }],
            "writeConcern": LEASE_WRITE_CONCERN.clone(),
        })
        .await?;
        Ok(())
    }

    /// Records, while `holder` still holds the lease at `epoch`, where it
    /// stopped counting (`handoff`, whose `seq` is above everything it
    /// spooled) and the ids it accounted for, for a takeover at the expiry
    /// should its release never happen. `false`: the lease is not its own.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn note_pending_handoff(
        &self,
        holder: &str,
        epoch: u64,
        handoff: Handoff,
        ids: &HandoffIds,
    ) -> Result<bool, StoreError> {
        // The ids first: a pending handoff is never seen without them.
        self.write_handoff_ids(epoch, ids).await?;
        self.set_on_held_lease(
            holder,
            epoch,
            doc! { "handoff_pending": handoff_doc(handoff) },
        )
        .await
    }

    /// `$set`s `set` on the lease document while `holder` holds it at
    /// `epoch`; `false`: it does not.
    pub(super) async fn set_on_held_lease(
        &self,
        holder: &str,
        epoch: u64,
        set: Document,
    ) -> Result<bool, StoreError> {
        let reply = self
            .command(doc! {
                "update": META,
                "updates": [{
                    "q": { "_id": LEASE, "holder": holder, "epoch": to_i64(epoch) },
                    "u": { "$set": set },
                }],
                "writeConcern": LEASE_WRITE_CONCERN.clone(),
            })
            .await?;
        Ok(int(&reply, "n") > 0)
    }
}
