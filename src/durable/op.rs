//! The unit of persistence: an [`Op`] is one increment or checkpoint, the
//! spool stores them in order with a sequence number, and the store applies
//! them idempotently (see ARCHITECTURE.md, "Exactly once").
//!
//! Field names are readable in code and short on disk (`#[serde(rename)]`):
//! every op is written to the spool, and the on-disk names are a format that
//! older spools still use.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::core::calendar::{local_day, split_by_day, DaySecs};
use crate::core::tracker::{Effect, OpenSegment};
use crate::core::{MemberKey, Millis};

/// One change to persist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Op {
    /// Voice time `[from, to)` in one segment, camera on or off.
    #[serde(rename = "v")]
    Voice {
        #[serde(rename = "g")]
        guild: u64,
        #[serde(rename = "u")]
        user: u64,
        #[serde(rename = "ch")]
        channel: u64,
        #[serde(rename = "cam")]
        camera: bool,
        #[serde(rename = "seg")]
        segment_start: Millis,
        from: Millis,
        to: Millis,
        /// Its seconds per local day, cut when the op was made (in the zone
        /// of its guild then): which day, week and month rollups it adds to,
        /// and how much, whatever `TIMEZONE` or tzdata a replay runs with.
        /// Absent in records from before it was carried (see
        /// [`Op::voice_days`]).
        #[serde(
            rename = "d",
            default,
            skip_serializing_if = "Option::is_none",
            with = "days_on_disk"
        )]
        days: Option<DaySecs>,
        /// The zone records of the previous version were credited in (they
        /// carry no days; new records carry days instead). Absent in records
        /// from before the rollups.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "tz_on_disk")]
        tz: Option<Tz>,
    },
    /// Messages (one, or several of the same member and day coalesced while
    /// the spool was busy), counted in the member's totals and on its local
    /// day.
    #[serde(rename = "m")]
    Message {
        #[serde(rename = "g")]
        guild: u64,
        #[serde(rename = "u")]
        user: u64,
        /// The local day it was sent on (its snowflake's time) in the zone of
        /// its guild, `YYYY-MM-DD`.
        day: String,
        /// How many messages (absent on disk when 1).
        #[serde(rename = "n", default = "one", skip_serializing_if = "is_one")]
        count: u32,
        /// The highest message id among them (absent: records of earlier
        /// versions, and ops made without one): kept with the totals
        /// (`member_stats.msg_max`) so that a takeover at an expiry counts
        /// exactly the buffered messages the previous holder never wrote.
        #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
        max_id: Option<u64>,
    },
    /// The member's session checkpoint: the open segment, or none.
    #[serde(rename = "s")]
    Checkpoint {
        #[serde(rename = "g")]
        guild: u64,
        #[serde(rename = "u")]
        user: u64,
        #[serde(with = "open_segment_on_disk")]
        open: Option<OpenSegment>,
    },
    /// A correction by a server manager or an operator (`/adjust`,
    /// `study-tracker adjust`): a signed amount of one figure, added to the
    /// member's totals and to the rollups of its local day, and recorded in
    /// the audit log, all once (never folded with another op).
    #[serde(rename = "a")]
    Adjust {
        #[serde(rename = "g")]
        guild: u64,
        #[serde(rename = "u")]
        user: u64,
        /// The correction's id (unique; the audit entry's key).
        id: u64,
        /// `camera_on`, `camera_off` or `messages`
        /// ([`crate::core::correction::What`]).
        what: String,
        /// Signed: seconds, or messages.
        amount: i64,
        /// When it was made.
        at: Millis,
        /// Its local day (`YYYY-MM-DD`) in the zone of its guild then.
        day: String,
        /// Who made it: a member's id, or `operator`.
        actor: String,
        reason: String,
    },
}

/// An op with its place in the global order. Sequence numbers grow strictly
/// across the whole life of a deployment (see [`crate::durable::spool`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequenced {
    pub seq: u64,
    pub op: Op,
    /// The lease epoch of the instance that appended it (0: no lease). The
    /// store refuses it on a document a newer epoch has written (fencing).
    #[serde(rename = "e", default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Op {
    /// A message by `member` sent at `at` (its snowflake's time), bucketed on
    /// its day in `tz`.
    #[must_use]
    pub fn message(member: MemberKey, at: Millis, tz: Tz) -> Op {
        Op::Message {
            guild: member.guild,
            user: member.user,
            day: local_day(at, tz),
            count: 1,
            max_id: None,
        }
    }

    /// The message `id` by `member`, sent at `at` (its snowflake's time).
    #[must_use]
    pub fn message_id(member: MemberKey, id: u64, at: Millis, tz: Tz) -> Op {
        Op::Message {
            guild: member.guild,
            user: member.user,
            day: local_day(at, tz),
            count: 1,
            max_id: Some(id),
        }
    }

    /// How many events this op stands for: a message op folded from several
    /// messages counts each; any other op counts one.
    #[must_use]
    pub fn events(&self) -> u64 {
        match self {
            Op::Message { count, .. } => u64::from(*count),
            _ => 1,
        }
    }

    /// The member this op is about.
    #[must_use]
    pub fn member(&self) -> MemberKey {
        let (Op::Voice { guild, user, .. }
        | Op::Message { guild, user, .. }
        | Op::Checkpoint { guild, user, .. }
        | Op::Adjust { guild, user, .. }) = self;
        MemberKey {
            guild: *guild,
            user: *user,
        }
    }
}

impl Op {
    /// The op of a tracker effect. A credit is cut at the local midnights of
    /// `tz` (the zone of its guild) here, once: the op carries its days.
    #[must_use]
    pub fn effect(e: Effect, tz: Tz) -> Op {
        match e {
            Effect::Credit(c) => Op::Voice {
                guild: c.member.guild,
                user: c.member.user,
                channel: c.channel,
                camera: c.camera,
                segment_start: c.segment_start,
                from: c.from,
                to: c.to,
                days: Some(split_by_day(c.from, c.to, tz)),
                tz: None,
            },
            Effect::Checkpoint { member, open } => Op::Checkpoint {
                guild: member.guild,
                user: member.user,
                open,
            },
        }
    }
}

impl Op {
    /// A voice op's seconds per local day: the days it carries; for a record
    /// of the previous version (a zone, no days), its credit cut in that
    /// zone; for a record from before the rollups (neither), none: those
    /// credits count in the totals and their segment only, as they did when
    /// they were made, and a replay under any `TIMEZONE` adds them to no
    /// rollup. Any other op: none. A function of the record alone (and, for
    /// the previous version's records, of tzdata).
    #[must_use]
    pub fn voice_days(&self) -> DaySecs {
        match self {
            Op::Voice {
                days: Some(days), ..
            } => days.clone(),
            Op::Voice {
                from,
                to,
                tz: Some(tz),
                ..
            } => split_by_day(*from, *to, *tz),
            _ => Vec::new(),
        }
    }
}

fn one() -> u32 {
    1
}

// serde's `skip_serializing_if` hands the field by reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_one(n: &u32) -> bool {
    *n == 1
}

/// A timezone on disk: its IANA name. A name this build does not know (a
/// record from a build with a newer zone database) reads as absent, so the
/// configured zone applies rather than the spool becoming unreadable.
mod tz_on_disk {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    // serde's `with` hands the field by reference.
    #[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)]
    pub(super) fn serialize<S: Serializer>(tz: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
        match tz {
            Some(tz) => s.serialize_str(tz.name()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.and_then(|name| name.parse().ok()))
    }
}

/// Seconds per local day on disk: `[["2026-11-29", 1800], …]`.
mod days_on_disk {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::core::calendar::{day_key, parse_day, DaySecs};

    // serde's `with` hands the field by reference.
    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(
        days: &Option<DaySecs>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        days.as_ref()
            .map(|d| {
                d.iter()
                    .map(|(date, secs)| (day_key(*date), *secs))
                    .collect::<Vec<_>>()
            })
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DaySecs>, D::Error> {
        let Some(days) = Option::<Vec<(String, i64)>>::deserialize(d)? else {
            return Ok(None);
        };
        days.into_iter()
            .map(|(day, secs)| {
                parse_day(&day)
                    .map(|date| (date, secs))
                    .ok_or_else(|| serde::de::Error::custom(format!("not a day: {day}")))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

/// The spool's form of [`OpenSegment`]: `{"ch", "cam", "seg"}`. The core
/// type stays free of serde; this is the only place that knows the format.
mod open_segment_on_disk {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::core::tracker::OpenSegment;
    use crate::core::Millis;

    #[derive(Serialize, Deserialize)]
    struct OnDisk {
        ch: u64,
        cam: bool,
        seg: Millis,
    }

    // serde's `with` hands the field by reference.
    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(
        open: &Option<OpenSegment>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        open.map(|o| OnDisk {
            ch: o.channel,
            cam: o.camera,
            seg: o.segment_start,
        })
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OpenSegment>, D::Error> {
        Ok(Option::<OnDisk>::deserialize(d)?.map(|o| OpenSegment {
            channel: o.ch,
            camera: o.cam,
            segment_start: o.seg,
        }))
    }
}

#[cfg(test)]
mod tests;
