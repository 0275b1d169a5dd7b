//! The service the Discord adapter and the CLI talk to: the tracker behind a
//! lock, the writer, the store and the timezone. No serenity types here, so
//! everything is testable against a real database without Discord.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use tokio::sync::Mutex;

use crate::op::Op;
use crate::stats::{self, Freshness, Periods, Stats};
use crate::store::{Store, StoredMember};
use crate::tracker::{Effect, MemberKey, Millis, Presence, Tracker};
use crate::writer::Writer;

/// What one flush did, for the log line and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub sessions: usize,
    pub credits: usize,
    pub secs: i64,
}

/// Shared state of a running bot.
#[derive(Debug)]
pub struct App {
    tracker: Mutex<Tracker>,
    writer: Writer,
    store: Store,
    tz: Tz,
    accepting: AtomicBool,
}

/// The wall clock, in the tracker's unit.
#[must_use]
pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

impl App {
    #[must_use]
    pub fn new(store: Store, writer: Writer, tz: Tz, resume_grace: Duration) -> App {
        App {
            tracker: Mutex::new(Tracker::new(
                i64::try_from(resume_grace.as_millis()).unwrap_or(i64::MAX),
            )),
            writer,
            store,
            tz,
            accepting: AtomicBool::new(true),
        }
    }

    #[must_use]
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    #[must_use]
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Loads session checkpoints left by the previous run, once the spool from
    /// that run has reached MongoDB (so they are current). Waits at most
    /// `timeout`; if MongoDB is down, members in voice are tracked from the
    /// moment they are seen, and the log says so.
    pub async fn restore_sessions(&self, timeout: Duration) {
        let started = Instant::now();
        loop {
            let status = self.writer.status();
            if status.backlog == 0 {
                break;
            }
            // Give an unreachable MongoDB a moment, not the whole timeout.
            let waited = started.elapsed();
            if waited >= timeout || (!status.db_ok && waited >= Duration::from_secs(2)) {
                tracing::warn!(backlog = status.backlog, "the previous run's spool is not applied yet (MongoDB unreachable?); sessions from before the restart cannot be resumed, members in voice are tracked from now");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, self.store.open_sessions()).await {
            Ok(Ok(checkpoints)) => {
                tracing::info!(
                    sessions = checkpoints.len(),
                    "loaded session checkpoints from before the restart"
                );
                self.tracker.lock().await.restore(checkpoints);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot load session checkpoints; members in voice are tracked from now");
            }
            Err(_) => tracing::warn!(
                "loading session checkpoints timed out; members in voice are tracked from now"
            ),
        }
    }

    /// A member's voice presence changed (`None`: left voice or went AFK).
    pub async fn voice_update(&self, member: MemberKey, presence: Option<Presence>, now: Millis) {
        if !self.accepting() {
            return;
        }
        let mut tracker = self.tracker.lock().await;
        let effects = tracker.voice_update(member, presence, now);
        log_effects(&effects);
        // Submitted under the lock: ops of one member reach the spool in order.
        self.writer.submit(effects.into_iter().map(Op::from)).await;
    }

    /// Members currently in voice in a guild, as seen on (re)connect.
    pub async fn guild_snapshot(&self, guild: u64, present: &[(u64, Presence)], now: Millis) {
        if !self.accepting() {
            return;
        }
        let mut tracker = self.tracker.lock().await;
        let effects = tracker.guild_snapshot(guild, present, now);
        tracing::info!(
            guild_id = guild,
            in_voice = present.len(),
            tracked = tracker.len(),
            "guild snapshot: tracking members already in voice"
        );
        log_effects(&effects);
        self.writer.submit(effects.into_iter().map(Op::from)).await;
    }

    /// A message by a member.
    pub async fn message(&self, member: MemberKey, now: Millis) {
        if !self.accepting() {
            return;
        }
        tracing::debug!(
            guild_id = member.guild,
            user_id = member.user,
            "message counted"
        );
        self.writer
            .submit([Op::message(member, now, self.tz)])
            .await;
    }

    /// Credits every open session up to `now`: the periodic flush.
    pub async fn flush_once(&self, now: Millis) -> FlushReport {
        let started = Instant::now();
        let mut tracker = self.tracker.lock().await;
        let effects = tracker.flush(now);
        let report = FlushReport {
            sessions: tracker.len(),
            credits: effects.len(),
            secs: effects
                .iter()
                .map(|e| match e {
                    Effect::Credit(c) => c.secs(),
                    Effect::Checkpoint { .. } => 0,
                })
                .sum(),
        };
        // Flush credits commute with every other op (increments and `$max`;
        // no checkpoints), so they are queued after the lock is released:
        // voice events and `/ud` do not wait for 100,000 credits to queue.
        drop(tracker);
        self.writer.submit(effects.into_iter().map(Op::from)).await;
        if report.sessions > 0 {
            tracing::info!(
                sessions = report.sessions,
                writes = report.credits,
                secs = report.secs,
                ms = started.elapsed().as_millis(),
                "flush: credited active voice sessions"
            );
        }
        report
    }

    /// Stops taking events and credits every open session up to `now`: the
    /// first step of a graceful shutdown. Sessions stay open in their
    /// checkpoints so that the next start can resume them.
    pub async fn stop_and_credit(&self, now: Millis) -> FlushReport {
        self.accepting.store(false, Ordering::SeqCst);
        self.flush_once(now).await
    }

    fn accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// A member's numbers up to `now`, including their session in progress.
    /// Never fails: if MongoDB cannot be read in time, the answer holds what
    /// this process knows and says so.
    pub async fn stats(&self, member: MemberKey, now: Millis) -> (Stats, Freshness) {
        let periods = Periods::at(now, self.tz);
        // The tracker lock can be held while the writer applies backpressure
        // (spool full): answer without the session in progress then.
        let pending = match tokio::time::timeout(TRACKER_WAIT, self.tracker.lock()).await {
            Ok(tracker) => tracker.pending(member, now),
            Err(_) => None,
        };
        let earliest = periods.earliest();
        let read = tokio::time::timeout(
            STATS_READ_TIMEOUT,
            self.store.member(member, earliest.at, &earliest.day),
        )
        .await;
        let (stored, freshness) = match read {
            Ok(Ok(stored)) => {
                let status = self.writer.status();
                let lag = !status.db_ok || status.backlog > 0;
                (
                    stored,
                    if lag {
                        Freshness::MayLag
                    } else {
                        Freshness::Current
                    },
                )
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read stats from MongoDB; answering from memory");
                (StoredMember::default(), Freshness::Unavailable)
            }
            Err(_) => {
                tracing::warn!("reading stats from MongoDB timed out; answering from memory");
                (StoredMember::default(), Freshness::Unavailable)
            }
        };
        (stats::compute(&stored, pending, &periods), freshness)
    }
}

/// How long `/ud` waits for the tracker before answering without the
/// session in progress.
const TRACKER_WAIT: Duration = Duration::from_millis(500);

/// How long `/ud` waits for MongoDB before answering from memory (Discord
/// wants an answer within 3 s).
const STATS_READ_TIMEOUT: Duration = Duration::from_secs(2);

fn log_effects(effects: &[Effect]) {
    for e in effects {
        match e {
            Effect::Credit(c) => tracing::info!(
                guild_id = c.member.guild,
                user_id = c.member.user,
                channel_id = c.channel,
                camera = c.camera,
                secs = c.secs(),
                "voice time credited"
            ),
            Effect::Checkpoint {
                member,
                open: Some(o),
            } => tracing::info!(
                guild_id = member.guild,
                user_id = member.user,
                channel_id = o.channel,
                camera = o.camera,
                "member in voice (joined, moved or toggled camera)"
            ),
            Effect::Checkpoint { member, open: None } => tracing::info!(
                guild_id = member.guild,
                user_id = member.user,
                "member left voice"
            ),
        }
    }
}
