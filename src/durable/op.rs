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
    /// A message by `member` sent at `at` (its snowflake's time), bucketed on
    /// its day in `tz`.
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
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::core::calendar::DaySecs;

    // serde's `with` hands the field by reference.
    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(
        days: &Option<DaySecs>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        days.as_ref()
            .map(|d| {
                d.iter()
                    .map(|(date, secs)| (date.format("%Y-%m-%d").to_string(), *secs))
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
                NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map(|date| (date, secs))
                    .map_err(serde::de::Error::custom)
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
            r#"{"seq":14,"op":{"t":"v","g":1,"u":2,"ch":3,"cam":true,"seg":10,"from":11,"to":12,"d":[["2026-11-29",1800],["2026-11-30",1800]]}}"#,
        ];
        for json in cases {
            let rec: Sequenced = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&rec).unwrap(), json);
        }
        // A voice record from before the rollups has no zone; a new one has
        // the zone it was credited in.
        let old: Sequenced = serde_json::from_str(cases[0]).unwrap();
        assert!(
            matches!(
                old.op,
                Op::Voice {
                    tz: None,
                    days: None,
                    ..
                }
            ),
            "{old:?}"
        );
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
        let carried: Sequenced = serde_json::from_str(cases[6]).unwrap();
        assert_eq!(carried.op.voice_days().len(), 2);
        // A pre-rollup record adds to no day, whatever the zone now (the
        // previous version's one is cut in its own zone: store::rollups).
        assert!(old.op.voice_days().is_empty());
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

    #[test]
    fn a_credit_carries_its_days_cut_when_the_op_is_made() {
        use crate::core::tracker::Credit;
        let ms = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        };
        // 23:30 to 00:30 in Kolkata (UTC+5:30): two local days.
        let credit = Credit {
            member: MemberKey { guild: 1, user: 2 },
            channel: 3,
            camera: true,
            segment_start: ms("2026-11-29T18:00:00Z"),
            from: ms("2026-11-29T18:00:00Z"),
            to: ms("2026-11-29T19:00:00Z"),
        };
        let op = Op::effect(Effect::Credit(credit), chrono_tz::Asia::Kolkata);
        let day = |s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            op.voice_days(),
            [(day("2026-11-29"), 1800), (day("2026-11-30"), 1800)]
        );
        // On disk and back: the same days.
        let json = serde_json::to_string(&op).unwrap();
        assert!(
            json.contains(r#""d":[["2026-11-29",1800],["2026-11-30",1800]]"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
    }
}
