//! The service the adapters call: the tracker behind a lock, the writer, the
//! store and the timezone. No serenity types here, so everything is testable
//! against a real database without Discord.
//!
//! - [`intake`]: gateway events in (voice, snapshots, messages).
//! - [`gateway`]: the gateway's health and reconnects (outages).
//! - [`flush`]: periodic credits, the flush loop, the shutdown credit.
//! - [`restore`]: session checkpoints from before a restart.
//! - [`queries`]: a member's numbers for `/ud` and the CLI.
//! - [`leaderboard`]: a page of a ranking, a member's ranks (`/leaderboard`, the card, the CLI).
//! - [`health`]: what the health endpoints read (gateway, MongoDB ping).
//! - [`lease`]: whether this instance counts (the lease's state).
//! - [`takeover`]: taking, renewing, losing and handing over the lease.
//! - [`lease_loops`]: the standby's tries, the renewals, stepping aside.
//! - [`handover`]: handing the lease over at shutdown (messages by id).
//! - [`message_ids`]: the messages already counted, by id.
//! - [`privacy`]: who opted out of tracking.
//! - [`adjust`]: corrections (`/adjust`), checked, then through the spool.
//! - [`retention`]: a removed server's data, kept, then erased.
//! - [`settings`]: each server's settings (cached for the event path, changed audited).

mod adjust;
mod flush;
mod gateway;
mod handover;
mod health;
mod intake;
mod leaderboard;
mod lease;
mod lease_loops;
mod message_ids;
mod privacy;
mod queries;
mod restore;
mod retention;
mod settings;
mod takeover;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono_tz::Tz;
use tokio::sync::Mutex;

pub use adjust::{Adjusted, Correction};
pub use flush::{flush_loop, FlushReport};
pub use health::ping_loop;
pub use leaderboard::{leaderboard_page, member_voice_ranks};
pub use lease::{snowflake_at, Lease, LeaseState};
pub use lease_loops::{lease_loop, renew_loop};
pub use queries::{MemberCard, CARD_DAYS};
pub use settings::{change_settings, settings_loop, Changed, SettingsChange, SettingsError};

use crate::core::link::Link;
use crate::core::tracker::{Effect, Tracker};
use crate::core::Millis;
use crate::durable::writer::Writer;
use crate::store::Store;

/// Shared state of a running bot.
#[derive(Debug)]
pub struct App {
    tracker: Mutex<Tracker>,
    writer: Writer,
    store: Store,
    tz: Tz,
    /// Voice seconds a local day needs to count towards a streak.
    streak_min_secs: i64,
    accepting: AtomicBool,
    /// The gateway at the watch's last observation (`None`: not yet, or headless).
    link: std::sync::Mutex<Option<Link>>,
    /// The lease: role, standby buffers (see [`lease`]).
    seat: lease::Seat,
    resume_grace_ms: Millis,
    /// Each server's settings, as last loaded or changed here.
    settings: settings::SettingsCache,
    /// Members who opted out of tracking.
    opt_outs: privacy::OptOuts,
    /// Held while a correction is checked and applied (one at a time).
    adjusting: tokio::sync::Mutex<()>,
}

/// The wall clock, in the tracker's unit.
#[must_use]
pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis() + clock_offset()
}

/// When the message `id` was sent, seen at `now` (its day bucket:
/// [`crate::core::calendar::sent_at`]). The debug clock offset shifts it as
/// it shifts `now`, so a test running the binary before a midnight sees
/// Discord's clock shifted alike.
#[must_use]
pub fn message_sent_at(id: u64, now: Millis) -> Millis {
    crate::core::calendar::sent_at(
        crate::core::calendar::snowflake_millis(id) + clock_offset(),
        now,
    )
}

/// Debug builds only (the tests' binary): `STUDY_TRACKER_DEBUG_CLOCK_OFFSET_MS`
/// shifts this process's clock, so an end-to-end test can run the real
/// binary just before a local midnight (as `faketime` would). Release
/// builds never read it.
#[cfg(debug_assertions)]
fn clock_offset() -> Millis {
    static OFFSET: std::sync::OnceLock<Millis> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("STUDY_TRACKER_DEBUG_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

#[cfg(not(debug_assertions))]
const fn clock_offset() -> Millis {
    0
}

impl App {
    #[must_use]
    pub fn new(
        store: Store,
        writer: Writer,
        tz: Tz,
        resume_grace: Duration,
        streak_min: Duration,
        lease_ttl: Duration,
    ) -> App {
        let resume_grace_ms = i64::try_from(resume_grace.as_millis()).unwrap_or(i64::MAX);
        let seat = lease::Seat::new(lease_ttl, writer.instance_id());
        App {
            tracker: Mutex::new(Tracker::new(resume_grace_ms)),
            writer,
            store,
            tz,
            streak_min_secs: i64::try_from(streak_min.as_secs()).unwrap_or(i64::MAX),
            accepting: AtomicBool::new(true),
            link: std::sync::Mutex::new(None),
            seat,
            resume_grace_ms,
            settings: settings::SettingsCache::default(),
            opt_outs: privacy::OptOuts::default(),
            adjusting: tokio::sync::Mutex::new(()),
        }
    }

    #[must_use]
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    #[must_use]
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Voice minutes a local day needs to count towards a streak.
    #[must_use]
    pub fn streak_min_minutes(&self) -> u32 {
        u32::try_from(self.streak_min_secs / 60).unwrap_or(u32::MAX)
    }

    /// Whether events are still taken (false once shutdown began).
    fn accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }
}

/// Whole seconds the credits among `effects` are worth.
fn credited_secs(effects: &[Effect]) -> i64 {
    effects
        .iter()
        .map(|e| match e {
            Effect::Credit(c) => c.secs(),
            Effect::Checkpoint { .. } => 0,
        })
        .sum()
}
