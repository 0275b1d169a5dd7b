//! Liveness and readiness as pure functions of a snapshot, so every rule
//! is tested without a server, a database or Discord.
//!
//! - **Alive** (`/healthz`): every background loop still runs, or shutdown
//!   has begun (loops then end on purpose). A standby is alive.
//! - **Ready** (`/readyz`): *warm*, able to count now or to take over:
//!   not shutting down, and all four hold: this instance holds the lease
//!   or stands by (not while counting provisionally, before MongoDB has
//!   said which); its shards are connected and a guild snapshot
//!   (`GUILD_CREATE`) was seen (not applicable when headless: no gateway
//!   runs); MongoDB answered within [`Limits::db_window`] and its latest
//!   command did not fail; at most [`Limits::max_backlog`] increments wait
//!   to reach MongoDB. A rollout that waits for readiness before stopping
//!   the old instance therefore waits for a warm standby; the body (and
//!   `study_tracker_lease_state`) says which role it has.

use std::time::Duration;

use serde::Serialize;

use crate::app::{Lease, LeaseState};
use crate::core::link::Link;
use crate::core::Millis;
use crate::store::Contact;

/// The gateway as readiness sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gateway {
    /// No gateway runs (no `DISCORD_TOKEN`: tests and benchmarks).
    Headless,
    /// It runs, but the watch has not looked yet.
    Starting,
    /// The watch's last observation.
    Seen(Link),
}

/// What readiness is decided on, read at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub now: Millis,
    /// Shutdown has begun.
    pub stopping: bool,
    pub lease: Lease,
    pub gateway: Gateway,
    /// A guild snapshot (`GUILD_CREATE`) was seen since start.
    pub guilds_seen: bool,
    pub db: Contact,
    /// Increments not yet applied to MongoDB.
    pub backlog: u64,
}

/// The thresholds of readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// MongoDB must have answered within this.
    pub db_window: Duration,
    /// At most this many increments may wait (`READY_MAX_BACKLOG`).
    pub max_backlog: u64,
}

/// The `/readyz` body: the verdict and each condition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub stopping: bool,
    pub lease: LeaseCheck,
    pub shards: ShardsCheck,
    pub mongodb: MongoCheck,
    pub spool: SpoolCheck,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaseCheck {
    pub ok: bool,
    pub held: bool,
    pub state: &'static str,
    pub epoch: u64,
    pub mode: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardsCheck {
    pub ok: bool,
    /// A guild snapshot (`GUILD_CREATE`) was seen: the instance knows who
    /// is in voice.
    pub guilds_seen: bool,
    /// `connected`, `stalled` (heartbeat acks overdue), `down`, `starting`,
    /// or `headless` (no gateway: the condition does not apply).
    pub state: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MongoCheck {
    pub ok: bool,
    /// Seconds since MongoDB last answered (`null`: never, since start).
    pub last_answer_secs_ago: Option<f64>,
    /// Whether the latest command failed (after the last answer).
    pub last_command_failed: bool,
    pub window_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpoolCheck {
    pub ok: bool,
    pub backlog: u64,
    pub max_backlog: u64,
}

/// Whether the instance is ready, and why (not).
#[must_use]
pub fn readiness(s: &Snapshot, limits: &Limits) -> Readiness {
    let lease = LeaseCheck {
        // Warm either way: the holder counts, a standby can take over.
        ok: matches!(s.lease.state, LeaseState::Holder | LeaseState::Standby),
        held: s.lease.held(),
        state: s.lease.state.name(),
        epoch: s.lease.epoch,
        mode: s.lease.mode,
    };
    let shards = match s.gateway {
        Gateway::Headless => ShardsCheck {
            ok: true,
            guilds_seen: s.guilds_seen,
            state: "headless",
        },
        Gateway::Starting => ShardsCheck {
            ok: false,
            guilds_seen: s.guilds_seen,
            state: "starting",
        },
        Gateway::Seen(link) => ShardsCheck {
            ok: link == Link::Healthy && s.guilds_seen,
            guilds_seen: s.guilds_seen,
            state: match link {
                Link::Healthy => "connected",
                Link::Stalled => "stalled",
                Link::Down => "down",
            },
        },
    };
    let window = i64::try_from(limits.db_window.as_millis()).unwrap_or(i64::MAX);
    let last_command_failed = match (s.db.last_answer, s.db.last_failure) {
        (Some(answer), Some(failure)) => failure > answer,
        (None, Some(_)) => true,
        (_, None) => false,
    };
    // Milliseconds ago fit an f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    let last_answer_secs_ago = s.db.last_answer.map(|t| (s.now - t).max(0) as f64 / 1000.0);
    let mongodb = MongoCheck {
        ok: s.db.last_answer.is_some_and(|t| s.now - t <= window) && !last_command_failed,
        last_answer_secs_ago,
        last_command_failed,
        window_secs: limits.db_window.as_secs(),
    };
    let spool = SpoolCheck {
        ok: s.backlog <= limits.max_backlog,
        backlog: s.backlog,
        max_backlog: limits.max_backlog,
    };
    Readiness {
        ready: !s.stopping && lease.ok && shards.ok && mongodb.ok && spool.ok,
        stopping: s.stopping,
        lease,
        shards,
        mongodb,
        spool,
    }
}

/// The `/healthz` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Liveness {
    pub alive: bool,
    pub stopping: bool,
    /// Loops that ended (while not shutting down, that is a failure).
    pub stopped_loops: Vec<&'static str>,
}

/// Whether the process is alive: its loops run, or it is shutting down.
/// `loops` holds each loop's name and whether it has ended.
#[must_use]
pub fn liveness(stopping: bool, loops: &[(&'static str, bool)]) -> Liveness {
    let stopped_loops: Vec<&'static str> = loops
        .iter()
        .filter(|(_, ended)| *ended)
        .map(|(name, _)| *name)
        .collect();
    Liveness {
        alive: stopping || stopped_loops.is_empty(),
        stopping,
        stopped_loops,
    }
}

#[cfg(test)]
mod tests;
