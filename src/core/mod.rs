//! The sans-IO core: events and time in, effects out. Nothing here does I/O
//! or can fail, and nothing here imports tokio, serenity, mongodb or another
//! folder of this crate (ARCHITECTURE.md, invariant 1).
//!
//! - [`tracker`]: open voice sessions; joins, leaves, moves, camera toggles,
//!   guild snapshots, flushes, resumes and gateway outages become credits and
//!   checkpoints.
//! - [`link`]: the gateway link's health, judged from the shard's state and
//!   heartbeat acks.
//! - [`policy`]: what is tracked (AFK channel, excluded channels, bots, webhooks, DMs, message kinds).
//! - [`settings`]: a server's settings (timezone, excluded channels, streak
//!   threshold) over the deployment's defaults, and their validation.
//! - [`calendar`]: the calendar in one place: local days, periods, their
//!   keys, and the cut of a credit at local midnights (the zone a parameter).
//! - [`correction`]: what a correction (`/adjust`) may change, its amount and reason, and the floor at zero.
//! - [`stats`]: the read model behind `/ud` and the period sums over it.
//! - [`daily`]: the last days' totals, one per local day (the `/ud` chart),
//!   and voice per local day over all history.
//! - [`history`]: a member's sessions (runs of segments without a gap) for `/history`.
//! - [`paging`]: page math for ◀ ▶ buttons (which items a page shows, ends).
//! - [`streak`]: current and longest streaks of days with enough voice time.
//! - [`leaderboard`]: periods and criteria of a ranking, ranks with ties,
//!   paging.

pub mod calendar;
pub mod correction;
pub mod daily;
pub mod history;
pub mod leaderboard;
pub mod link;
pub mod paging;
pub mod policy;
pub mod settings;
pub mod stats;
pub mod streak;
pub mod tracker;

/// Unix epoch milliseconds.
pub type Millis = i64;

/// Whole seconds credited for the stretch `[from, to)` (see the module docs).
#[must_use]
pub fn whole_secs(from: Millis, to: Millis) -> i64 {
    to.div_euclid(1000) - from.div_euclid(1000)
}

/// A member of a guild: stats are kept per guild and per member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberKey {
    pub guild: u64,
    pub user: u64,
}

/// Where a member is in voice, as far as tracking cares. The adapter maps the
/// guild's AFK channel, bots and leaves to "no presence".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presence {
    pub channel: u64,
    pub camera: bool,
}
