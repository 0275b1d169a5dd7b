//! The unit of persistence: an [`Op`] is one increment or checkpoint, the
//! spool stores them in order with a sequence number, and the store applies
//! them idempotently (see ARCHITECTURE.md, "Exactly once").

use chrono::TimeZone;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::tracker::{Effect, MemberKey, Millis};

/// One change to persist. Field names are short because every op is written
/// to the spool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Op {
    /// Voice time `[from, to)` in one segment, camera on or off.
    #[serde(rename = "v")]
    Voice {
        g: u64,
        u: u64,
        ch: u64,
        cam: bool,
        seg: Millis,
        from: Millis,
        to: Millis,
    },
    /// One message, counted in the member's totals and on its local day.
    #[serde(rename = "m")]
    Message {
        g: u64,
        u: u64,
        /// The day in the configured timezone, `YYYY-MM-DD`.
        day: String,
    },
    /// The member's session checkpoint: the open segment, or none.
    #[serde(rename = "s")]
    Session {
        g: u64,
        u: u64,
        open: Option<SessionOpen>,
    },
}

/// The open segment a session checkpoint points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOpen {
    pub ch: u64,
    pub cam: bool,
    pub seg: Millis,
}

/// An op with its place in the global order. Sequence numbers grow strictly
/// across the whole life of a deployment (see [`crate::spool`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequenced {
    pub seq: u64,
    pub op: Op,
}

impl Op {
    /// A message by `member` at `at`, bucketed on its day in `tz`.
    #[must_use]
    pub fn message(member: MemberKey, at: Millis, tz: Tz) -> Op {
        Op::Message {
            g: member.guild,
            u: member.user,
            day: local_day(at, tz),
        }
    }

    /// The member this op is about.
    #[must_use]
    pub fn member(&self) -> MemberKey {
        let (Op::Voice { g, u, .. } | Op::Message { g, u, .. } | Op::Session { g, u, .. }) = self;
        MemberKey {
            guild: *g,
            user: *u,
        }
    }
}

impl From<Effect> for Op {
    fn from(e: Effect) -> Op {
        match e {
            Effect::Credit(c) => Op::Voice {
                g: c.member.guild,
                u: c.member.user,
                ch: c.channel,
                cam: c.camera,
                seg: c.segment_start,
                from: c.from,
                to: c.to,
            },
            Effect::Checkpoint { member, open } => Op::Session {
                g: member.guild,
                u: member.user,
                open: open.map(|o| SessionOpen {
                    ch: o.channel,
                    cam: o.camera,
                    seg: o.segment_start,
                }),
            },
        }
    }
}

/// `YYYY-MM-DD` of the instant `at` in `tz`.
#[must_use]
pub fn local_day(at: Millis, tz: Tz) -> String {
    tz.timestamp_millis_opt(at).single().map_or_else(
        || "1970-01-01".to_owned(),
        |t| t.format("%Y-%m-%d").to_string(),
    )
}
