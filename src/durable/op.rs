//! The unit of persistence: an [`Op`] is one increment or checkpoint, the
//! spool stores them in order with a sequence number, and the store applies
//! them idempotently (see ARCHITECTURE.md, "Exactly once").
//!
//! Field names are readable in code and short on disk (`#[serde(rename)]`):
//! every op is written to the spool, and the on-disk names are a format that
//! older spools still use.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::core::periods::local_day;
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
        /// The day in the configured timezone, `YYYY-MM-DD`.
        day: String,
        /// How many messages (absent on disk when 1).
        #[serde(rename = "n", default = "one", skip_serializing_if = "is_one")]
        count: u32,
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
    /// A message by `member` at `at`, bucketed on its day in `tz`.
    #[must_use]
    pub fn message(member: MemberKey, at: Millis, tz: Tz) -> Op {
        Op::Message {
            guild: member.guild,
            user: member.user,
            day: local_day(at, tz),
            count: 1,
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
        | Op::Checkpoint { guild, user, .. }) = self;
        MemberKey {
            guild: *guild,
            user: *user,
        }
    }
}

impl From<Effect> for Op {
    fn from(e: Effect) -> Op {
        match e {
            Effect::Credit(c) => Op::Voice {
                guild: c.member.guild,
                user: c.member.user,
                channel: c.channel,
                camera: c.camera,
                segment_start: c.segment_start,
                from: c.from,
                to: c.to,
            },
            Effect::Checkpoint { member, open } => Op::Checkpoint {
                guild: member.guild,
                user: member.user,
                open,
            },
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
mod tests {
    use super::*;

    /// Records as the previous version wrote them: a spool left by it must
    /// still be read (and written the same way).
    #[test]
    fn on_disk_format_is_unchanged() {
        let cases = [
            r#"{"seq":7,"op":{"t":"v","g":1,"u":2,"ch":3,"cam":true,"seg":10,"from":11,"to":12}}"#,
            r#"{"seq":8,"op":{"t":"m","g":1,"u":2,"day":"2026-11-26"}}"#,
            r#"{"seq":9,"op":{"t":"s","g":1,"u":2,"open":{"ch":3,"cam":false,"seg":10}}}"#,
            r#"{"seq":10,"op":{"t":"s","g":1,"u":2,"open":null}}"#,
            r#"{"seq":11,"op":{"t":"m","g":1,"u":2,"day":"2026-11-26","n":3}}"#,
        ];
        for json in cases {
            let rec: Sequenced = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&rec).unwrap(), json);
        }
        let rec: Sequenced = serde_json::from_str(cases[2]).unwrap();
        assert_eq!(
            rec.op,
            Op::Checkpoint {
                guild: 1,
                user: 2,
                open: Some(OpenSegment {
                    channel: 3,
                    camera: false,
                    segment_start: 10
                })
            }
        );
    }
}
