//! The lease's loops: taking it as a standby, renewing it as the holder
//! (on its own task, beside a takeover), and stepping aside when the
//! holder is cut off from Discord.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::lease::{snowflake_at, Role};
use super::{now_millis, App};
use crate::core::Millis;
use crate::store::{StoreError, Taken};

/// How often a standby tries to take the lease (one read, and a
/// `findAndModify` when it is free): after a release, commands go
/// unanswered for at most this long.
const STANDBY_TRY: Duration = Duration::from_millis(250);

impl App {
    /// The holder's gateway has been down for `down` (past two TTLs): it
    /// counts nothing, so it drains what it has, releases the lease with
    /// the handoff at its gateway's last healthy moment (a standby whose
    /// gateway works counts from there, from its buffer) and stands by. If
    /// the drain does not finish, it stands by without releasing (the
    /// standby takes over at the expiry).
    async fn step_aside_cut_off(&self, down: Duration) {
        let Role::Holder { epoch, .. } = self.seat.role() else {
            return;
        };
        let down_ms = i64::try_from(down.as_millis()).unwrap_or(i64::MAX);
        let at = now_millis().saturating_sub(down_ms);
        tracing::error!(
            epoch,
            gateway_down_secs = down.as_secs(),
            consequence = "a standby with a working gateway takes over from the gateway's last healthy moment",
            "the Discord gateway is down; handing the lease over"
        );
        // A fresh validity for the drain.
        self.renew_lease().await;
        if !matches!(self.seat.role(), Role::Holder { .. }) {
            return; // lost meanwhile (stepped down)
        }
        // What it counted is final: the release hands those ids over.
        self.end_message_intake();
        if self.writer.wait_idle(self.seat.ttl / 3).await {
            let until = tokio::time::Instant::now() + self.seat.ttl / 3;
            self.release_lease(snowflake_at(at), at, until).await;
        } else {
            self.writer.allow_writes_until(Some(Instant::now()));
            tracing::error!(
                epoch,
                consequence = "a standby takes over when the lease expires",
                "the spool did not drain; the lease is not released"
            );
        }
        let _transition = self.seat.transition.lock().await;
        self.stand_by().await;
    }
}

/// How often a warm standby announces itself, and how old (by the
/// holder's clock, beyond a third of the TTL of skew) an announcement may
/// be for the holder to count it.
const ANNOUNCE: Duration = Duration::from_secs(1);
const ANNOUNCED_WITHIN_MS: i64 = 3_000;

impl App {
    /// "Now" for the lease: the server's clock, so that the expiry is set
    /// and compared in one clock whatever the instances' wall clocks say
    /// (F18); this process's clock only if the server does not give it.
    pub(super) async fn lease_now(&self) -> Result<Millis, StoreError> {
        Ok(self.store.server_time().await?.unwrap_or_else(now_millis))
    }

    pub(super) async fn acquire(&self) -> Result<Option<Taken>, StoreError> {
        let now = self.lease_now().await?;
        self.store
            .acquire_lease(&self.claimant(), now, self.ttl_ms())
            .await
    }

    /// A standby says it is here, once a second: warm (gateway healthy,
    /// guilds seen) or starting. A holder whose lease lapses then leaves the
    /// answers to it; a holder handing over waits for a starting one.
    async fn announce(&self) {
        let warm = self.seat.gateway_unhealthy_for().is_none() && self.guilds_seen();
        let due = lock(&self.seat.announced).is_none_or(|t| t.elapsed() >= ANNOUNCE);
        if !due {
            return;
        }
        *lock(&self.seat.announced) = Some(Instant::now());
        if let Err(e) = self
            .store
            .note_standby(&self.seat.instance, now_millis(), warm)
            .await
        {
            tracing::debug!(error = %crate::telemetry::cause_chain(&e), "cannot announce this standby");
        }
    }

    fn recent(&self, at: Option<i64>) -> bool {
        let skew = i64::try_from((self.seat.ttl / 3).as_millis()).unwrap_or(i64::MAX);
        at.is_some_and(|t| now_millis() - t <= ANNOUNCED_WITHIN_MS + skew)
    }

    /// Whether a warm standby announced itself lately, as the holder reads
    /// it at each renewal (kept as it was when MongoDB cannot be read).
    pub(super) async fn note_standbys(&self) {
        if let Ok((warm, _)) = self.store.standbys_seen().await {
            let seen = self.recent(warm);
            self.seat
                .standby_seen
                .store(seen, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Before handing over: if a standby is starting (announced, not warm
    /// yet), keeps counting until it is warm, up to `until`, rather than
    /// releasing the lease to nobody. Returns at once when a warm standby is
    /// here, when none is starting, or when MongoDB cannot say.
    pub async fn wait_for_warm_standby(&self, until: tokio::time::Instant) {
        let mut said = false;
        loop {
            let Ok(Ok((warm, starting))) =
                tokio::time::timeout_at(until, self.store.standbys_seen()).await
            else {
                return;
            };
            if self.recent(warm) || !self.recent(starting) {
                return;
            }
            if tokio::time::Instant::now() + STANDBY_TRY >= until {
                tracing::warn!(
                    consequence = "messages until the standby is warm are not counted",
                    "the starting standby did not become warm in time; handing over anyway"
                );
                return;
            }
            if !said {
                tracing::info!(
                    "a standby is starting; counting until it is warm before handing over"
                );
                said = true;
            }
            tokio::time::sleep(STANDBY_TRY).await;
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits `d`; `false` when `stop` fired first (the loop ends).
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        biased;
        () = stop.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

/// Tries to take the lease every 250 ms while standing by (or counting
/// provisionally); a takeover runs here, however long its restore takes,
/// while `renew_loop` keeps the lease. Stops between iterations.
pub async fn lease_loop(app: Arc<App>, restore: (Duration, Duration), stop: CancellationToken) {
    loop {
        if app.seat.role() == Role::Single {
            return;
        }
        if !pause(&stop, STANDBY_TRY).await {
            return;
        }
        match app.seat.role() {
            // A standby cut off from Discord would take over blind: it
            // waits for its gateway (a Discord-wide outage does not make
            // the lease flap).
            Role::Standby if app.seat.gateway_unhealthy_for().is_some() => app.announce().await,
            Role::Standby | Role::Provisional { .. } => {
                if !app.try_take_lease(restore).await && app.seat.role() == Role::Standby {
                    app.announce().await;
                }
            }
            Role::Holder { .. } | Role::Single => {}
        }
    }
}

/// Renews the lease every third of its TTL while this instance holds it,
/// on its own task: independent of a takeover in progress (its restore can
/// outlast the TTL), so the gate stays open and no other standby can take
/// the lease mid-takeover. Stops between iterations.
pub async fn renew_loop(app: Arc<App>, stop: CancellationToken) {
    loop {
        if app.seat.role() == Role::Single {
            return;
        }
        if !pause(&stop, app.seat.ttl / 3).await {
            return;
        }
        if !matches!(app.seat.role(), Role::Holder { .. }) {
            continue;
        }
        // A holder cut off from Discord counts nothing: past two TTLs it
        // hands the lease over, for a standby whose gateway works.
        match app.seat.gateway_unhealthy_for() {
            Some(down) if down > app.seat.ttl * 2 => app.step_aside_cut_off(down).await,
            _ => app.renew_lease().await,
        }
    }
}
