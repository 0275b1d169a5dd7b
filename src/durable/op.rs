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
        /// The timezone in force when it was credited: its day and period
        /// rollups are cut at this zone's midnights. Absent in records from
        /// before the rollups (the store's configured zone applies).
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

impl Op {
    /// The op of a tracker effect; a credit's rollups follow `tz`.
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
                tz: Some(tz),
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
            r#"{"seq":12,"op":{"t":"v","g":1,"u":2,"ch":3,"cam":true,"seg":10,"from":11,"to":12,"tz":"Asia/Kolkata"}}"#,
        ];
        for json in cases {
            let rec: Sequenced = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&rec).unwrap(), json);
        }
        // A voice record from before the rollups has no zone; a new one has
        // the zone it was credited in.
        let old: Sequenced = serde_json::from_str(cases[0]).unwrap();
        assert!(matches!(old.op, Op::Voice { tz: None, .. }), "{old:?}");
        let new: Sequenced = serde_json::from_str(cases[5]).unwrap();
        assert!(
            matches!(
                new.op,
                Op::Voice {
                    tz: Some(chrono_tz::Asia::Kolkata),
                    ..
                }
            ),
            "{new:?}"
        );
        // An unknown zone name reads as absent, not as an unreadable spool.
        let unknown: Sequenced = serde_json::from_str(
            r#"{"seq":13,"op":{"t":"v","g":1,"u":2,"ch":3,"cam":true,"seg":10,"from":11,"to":12,"tz":"Mars/Olympus"}}"#,
        )
        .unwrap();
        assert!(matches!(unknown.op, Op::Voice { tz: None, .. }));
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
