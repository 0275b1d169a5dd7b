//! Corrections (`/adjust`, `study-tracker adjust`): the figures a
//! correction is checked against, and the operator's path.
//!
//! `/adjust` goes through the bot's spool as an [`Op::Adjust`], applied by
//! the seq-guarded statements every op gets (`store/statements.rs`): the
//! member's totals, the rollups of its day, and its `audit_log` entry.
//!
//! `study-tracker adjust` runs beside the bot and cannot append to its
//! spool (the bot holds it locked, and sequence numbers are the bot's).
//! Its durable record is a request in `corrections_pending` written before
//! anything else; then each of the same documents gets a statement guarded
//! by the correction's id (`adj`, the ids of the latest corrections applied
//! to that document) instead of by a sequence number, so sending it again
//! changes nothing; then the audit entry (insert-only); then the request is
//! deleted. A request left behind (the command killed half-way) is finished
//! by the next `adjust` and by the lease holder's settings reload, the same
//! way, exactly once.

use std::collections::HashSet;

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};

use super::audit::correction_id;
use super::schema::{int, member_id, to_i64, AUDIT_LOG, DUPLICATE_KEY, MEMBER_STATS};
use super::statements::{group, Mark};
use super::{Store, StoreError};
use crate::core::correction::What;
use crate::core::stats::Totals;
use crate::core::MemberKey;
use crate::durable::op::{Op, Sequenced};

pub(super) const CORRECTIONS_PENDING: &str = "corrections_pending";

/// How many correction ids a document remembers (`adj`): far more than can
/// be in flight at once.
const REMEMBERED: i32 = 64;

impl Store {
    /// `member`'s all-time figures and those of the local day `day`
    /// (`YYYY-MM-DD`), as stored now (read from the primary).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn member_figures(
        &self,
        member: MemberKey,
        day: &str,
    ) -> Result<(Totals, Totals), StoreError> {
        let totals = |d: Option<Document>| {
            let d = d.unwrap_or_default();
            Totals {
                cam_on_secs: int(&d, "voice_cam_on_secs"),
                cam_off_secs: int(&d, "voice_cam_off_secs"),
                messages: int(&d, "messages"),
            }
        };
        let all = self
            .decisive(MEMBER_STATS)
            .find_one(doc! { "_id": member_id(member) })
            .await?
            .unwrap_or_default();
        // The day's figures: the member's current day (`store/periods.rs`),
        // if it is `day`.
        let mut today = super::periods::stored(&all, "day", day);
        let mut all = totals(Some(all));
        // Operator corrections not finished yet (one running now, or left
        // half-way) may be applied partly or not at all: their negative
        // amounts count already, so that no correction gets past the floor
        // beside them.
        let pending: Vec<Document> = self
            .decisive(CORRECTIONS_PENDING)
            .find(doc! { "guild_id": to_i64(member.guild), "user_id": to_i64(member.user) })
            .await?
            .try_collect()
            .await?;
        for d in &pending {
            let op = d
                .get_str("op")
                .ok()
                .and_then(|s| serde_json::from_str::<Op>(s).ok());
            let Some(Op::Adjust {
                what,
                amount,
                day: on,
                ..
            }) = op
            else {
                continue;
            };
            let Ok(what) = What::parse(&what) else {
                continue;
            };
            let taken = amount.min(0);
            what.add_to(&mut all, taken);
            if on == day {
                what.add_to(&mut today, taken);
            }
        }
        Ok((all, today))
    }

    /// Whether correction `id`'s audit entry is stored (it is written with
    /// the figures, by the same op).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn correction_recorded(&self, guild: u64, id: u64) -> Result<bool, StoreError> {
        Ok(self
            .decisive(AUDIT_LOG)
            .find_one(doc! { "_id": correction_id(guild, id) })
            .await?
            .is_some())
    }

    /// The operator's correction (see the module docs): recorded, applied
    /// to each document once, audited, then its request removed.
    ///
    /// # Errors
    /// The server is unreachable or refuses: the request stays, and the
    /// next `adjust` or the lease holder finishes it.
    pub async fn apply_correction_directly(&self, op: &Op) -> Result<(), StoreError> {
        let member = op.member();
        let Op::Adjust { id, .. } = op else {
            return Ok(());
        };
        let pending_id = correction_id(member.guild, *id);
        let request =
            serde_json::to_string(op).map_err(|e| StoreError::Permanent(e.to_string()))?;
        self.decisive(CORRECTIONS_PENDING)
            .update_one(
                doc! { "_id": &pending_id },
                doc! { "$setOnInsert": {
                    "op": request,
                    "at": DateTime::now(),
                    "guild_id": to_i64(member.guild),
                    "user_id": to_i64(member.user),
                } },
            )
            .upsert(true)
            .await?;
        self.finish_correction(op, &pending_id).await
    }

    async fn finish_correction(&self, op: &Op, pending_id: &str) -> Result<(), StoreError> {
        let Op::Adjust { id, .. } = op else {
            return Ok(());
        };
        let id = id.to_string();
        let rec = Sequenced {
            seq: 0,
            op: op.clone(),
            epoch: 0,
        };
        let batch = [rec];
        // The statements the spool's op would get (the audit entry last),
        // each guarded by the correction's id instead of a sequence number.
        for (coll, docs) in group(&batch, &HashSet::new()) {
            for d in docs {
                let mark = if coll == AUDIT_LOG {
                    Mark::None
                } else {
                    Mark::Remember("adj", id.as_str().into(), REMEMBERED)
                };
                let statement =
                    d.statement_guarded(doc! { "_id": &d.id, "adj": { "$ne": &id } }, mark);
                match self.update_one_statement(coll, statement).await?.first() {
                    // Applied, or applied before (the guard matched nothing
                    // and the upsert collided with the document's `_id`).
                    None | Some((_, DUPLICATE_KEY, _)) => {}
                    Some((_, code, msg)) => {
                        return Err(StoreError::Permanent(format!(
                            "{coll}/{} refuses the correction (code {code}): {msg}",
                            d.id
                        )))
                    }
                }
            }
        }
        self.decisive(CORRECTIONS_PENDING)
            .delete_one(doc! { "_id": pending_id })
            .await?;
        Ok(())
    }

    /// Finishes the operator corrections left half-way (requested before
    /// `older_than`), unless their member was erased after them. Returns
    /// how many.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn finish_pending_corrections(
        &self,
        older_than: crate::core::Millis,
    ) -> Result<usize, StoreError> {
        let docs: Vec<Document> = self
            .decisive(CORRECTIONS_PENDING)
            .find(doc! { "at": { "$lt": DateTime::from_millis(older_than) } })
            .await?
            .try_collect()
            .await?;
        let mut n = 0;
        for d in docs {
            let Ok(id) = d.get_str("_id") else { continue };
            let Some(op) = d
                .get_str("op")
                .ok()
                .and_then(|s| serde_json::from_str::<Op>(s).ok())
            else {
                continue;
            };
            if let Op::Adjust { at, .. } = &op {
                if self.erased_since(op.member(), *at).await? {
                    self.decisive(CORRECTIONS_PENDING)
                        .delete_one(doc! { "_id": id })
                        .await?;
                    continue;
                }
            }
            self.finish_correction(&op, id).await?;
            self.forget_boards(op.member().guild);
            n += 1;
        }
        Ok(n)
    }
}
