//! Corrections by server managers (`/adjust`): checked against the stored
//! figures, then submitted as an [`Op::Adjust`] through the spool, so they
//! are on disk before they are sent and applied once however often the
//! spool is replayed (ARCHITECTURE.md, invariant 21).

use std::time::Duration;

use super::App;
use crate::core::calendar::local_day;
use crate::core::correction::{check_floor, What};
use crate::core::stats::Totals;
use crate::core::{MemberKey, Millis};
use crate::durable::op::Op;
use crate::store::Actor;

/// How long a correction waits for the writer: before the check (so the
/// figures read include everything counted so far) and after it (to say it
/// is applied).
const ADJUST_WAIT: Duration = Duration::from_secs(5);

/// A correction to make.
#[derive(Clone, Debug)]
pub struct Correction {
    pub member: MemberKey,
    pub what: What,
    /// Signed: seconds, or messages.
    pub amount: i64,
    pub actor: Actor,
    pub reason: String,
    /// Unique (the interaction's id for `/adjust`).
    pub id: u64,
}

/// What became of a correction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adjusted {
    /// Applied: the member's all-time figures now.
    Applied { total: Totals, day: String },
    /// In the spool, not applied yet (the database is slow): it will be.
    Spooled { day: String },
    /// Refused, nothing written: the line to show.
    Refused(String),
}

impl App {
    /// Makes the correction `c` at `now` (see the module docs). Corrections
    /// are made one at a time, so two cannot both pass the floor check
    /// against the same figures.
    pub async fn adjust(&self, c: Correction, now: Millis) -> Adjusted {
        if !self.lease().counts() {
            return Adjusted::Refused(
                "⚠️ This instance is handing over to another (a redeploy); nothing changed. Please try again in a few seconds.".into(),
            );
        }
        let _one_at_a_time = self.adjusting.lock().await;
        let day = local_day(now, self.timezone_of(c.member.guild));
        if !self.writer.wait_idle(ADJUST_WAIT).await {
            return Adjusted::Refused(
                "⚠️ The database is catching up with recent activity; nothing changed. Please try again in a minute.".into(),
            );
        }
        let (total, today) = match self.store.member_figures(c.member, &day).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a member's figures for a correction");
                return Adjusted::Refused(
                    "⚠️ The database does not answer right now; nothing changed. Please try again in a minute.".into(),
                );
            }
        };
        if let Err(line) = check_floor(c.what, c.amount, &total, &today) {
            return Adjusted::Refused(line);
        }
        tracing::info!(
            guild_id = c.member.guild,
            user_id = c.member.user,
            what = c.what.name(),
            amount = c.amount,
            actor = %c.actor.id(),
            correction_id = c.id,
            "correction submitted"
        );
        self.writer.submit([Op::Adjust {
            guild: c.member.guild,
            user: c.member.user,
            id: c.id,
            what: c.what.name().to_owned(),
            amount: c.amount,
            at: now,
            day: day.clone(),
            actor: c.actor.id(),
            reason: c.reason,
        }]);
        if !self.writer.wait_idle(ADJUST_WAIT).await {
            return Adjusted::Spooled { day };
        }
        // Applied only if its entry is there: an op this instance could not
        // write (its lease lost meanwhile: fenced, set aside) is not.
        match self.store.correction_recorded(c.member.guild, c.id).await {
            Ok(true) => {
                self.store.forget_boards(c.member.guild);
                let mut total = total;
                c.what.add_to(&mut total, c.amount);
                Adjusted::Applied { total, day }
            }
            Ok(false) => {
                tracing::error!(
                    correction_id = c.id,
                    consequence = "not applied; the manager is told to make it again",
                    "a correction was set aside (this instance lost the lease meanwhile)"
                );
                Adjusted::Refused("⚠️ The correction could not be saved (the bot was handing over to another instance); nothing changed. Please make it again.".into())
            }
            Err(_) => Adjusted::Spooled { day },
        }
    }
}

/// An operator's correction left half-way is finished after this long (the
/// command that made it may still be running before that).
const LEFT_BEHIND_MS: Millis = 60_000;

impl App {
    /// Finishes the operator corrections (`study-tracker adjust`) left
    /// half-way; only the instance that counts does.
    pub(super) async fn finish_operator_corrections(&self, now: Millis) {
        if !self.lease().counts() {
            return;
        }
        match self
            .store
            .finish_pending_corrections(now - LEFT_BEHIND_MS)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                corrections = n,
                "finished operator corrections left half-way"
            ),
            Err(e) => tracing::debug!(error = %e, "cannot finish operator corrections yet"),
        }
    }
}
