//! Whether this instance counts: the lease in MongoDB (ARCHITECTURE.md,
//! "The lease"). Its holder counts and answers commands; a standby keeps its
//! own view of who is in voice and buffers the messages it sees, so that it
//! can take over where the holder stopped. `/readyz` and `/metrics` read the
//! lease from [`App::lease`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::message_ids::MessageIds;
use super::App;
use crate::core::{MemberKey, Millis, Presence};

/// Messages a standby keeps (the oldest go first): a handover takes seconds.
const BUFFER: usize = 10_000;
/// Discord's epoch (2015-01-01) in Unix milliseconds.
const DISCORD_EPOCH: Millis = 1_420_070_400_000;

/// The smallest snowflake of the millisecond `at`.
#[must_use]
pub fn snowflake_at(at: Millis) -> u64 {
    u64::try_from(at - DISCORD_EPOCH).unwrap_or(0) << 22
}

/// This instance's part in the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// It counts.
    Holder,
    /// Another instance counts; this one waits to take over.
    Standby,
    /// MongoDB could not be asked at start: this instance counts and
    /// answers, writing nothing, until MongoDB says whether the lease was
    /// free (what it counted then stands) or not (it is fenced off).
    Provisional,
}

impl LeaseState {
    /// Every state, for metrics (one gauge per state).
    pub const ALL: [LeaseState; 3] = [
        LeaseState::Holder,
        LeaseState::Standby,
        LeaseState::Provisional,
    ];

    /// The state's name in `/readyz` and `/metrics`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            LeaseState::Holder => "holder",
            LeaseState::Standby => "standby",
            LeaseState::Provisional => "provisional",
        }
    }
}

/// The lease as this instance sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub state: LeaseState,
    /// Fencing number, raised by each new holder.
    pub epoch: u64,
    /// How the lease is decided, for people reading `/readyz`.
    pub mode: &'static str,
    /// Whether this instance answers commands and presses (see
    /// [`Lease::counts`]).
    pub answers: bool,
}

impl Lease {
    /// `LEASE_TTL_SECS=0`: no lease, a single instance, which therefore holds it.
    pub const SINGLE_INSTANCE: Lease = Lease {
        state: LeaseState::Holder,
        epoch: 0,
        mode: "single instance (LEASE_TTL_SECS=0)",
        answers: true,
    };

    /// Whether this instance holds the lease (and so is ready).
    #[must_use]
    pub fn held(&self) -> bool {
        self.state == LeaseState::Holder
    }

    /// Whether this instance answers commands and presses: the holder
    /// while its lease is valid by its own clock, or, lapsed (cut off from
    /// MongoDB), as long as no warm standby was seen at its last renewal (a
    /// lone holder in an outage still answers from what it knows; one with
    /// a standby leaves the answers to whoever took over); and an instance
    /// that could not ask MongoDB yet.
    #[must_use]
    pub fn counts(&self) -> bool {
        self.answers
    }
}

/// This instance's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// No lease (`LEASE_TTL_SECS=0`).
    Single,
    Holder {
        epoch: u64,
        valid_until: Instant,
    },
    Standby,
    /// Counting since `since` without knowing the lease (MongoDB
    /// unreachable at start).
    Provisional {
        since: Millis,
    },
}

/// A holder's handover, for its message intake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Handover {
    #[default]
    None,
    /// Handing over: messages are still counted (intake is otherwise
    /// closing).
    Counting,
    /// Handed over (or past the settle): nothing is counted.
    Closed,
}

/// What intake does with a message.
#[derive(Debug, Default)]
pub(super) struct Messages {
    /// Standing by: messages are buffered, not counted.
    pub(super) standby: bool,
    /// Where a handover of this holder is.
    pub(super) handover: Handover,
    /// The messages already counted, by id (here or by the holder before):
    /// never counted again, and what a handover passes on.
    pub(super) ids: MessageIds,
    pub(super) buffer: VecDeque<(u64, MemberKey, Millis)>,
    pub(super) dropped: u64,
    /// Provisional: messages are counted and also buffered, to be counted
    /// again from the handoff point if the provisional counts are fenced.
    pub(super) keep: bool,
}

impl Messages {
    pub(super) fn buffer(&mut self, id: u64, member: MemberKey, at: Millis) {
        if self.buffer.len() >= BUFFER {
            self.buffer.pop_front();
            self.dropped += 1;
            if self.dropped == 1 {
                tracing::warn!(
                    kept = BUFFER,
                    consequence =
                        "the oldest buffered messages are not counted if this instance takes over",
                    "standby message buffer full"
                );
            }
        }
        self.buffer.push_back((id, member, at));
    }
}

/// The lease's state inside the [`App`].
#[derive(Debug)]
pub(super) struct Seat {
    pub(super) ttl: Duration,
    /// `HOSTNAME:instance-id`, for people reading the lease.
    pub(super) holder: String,
    /// The spool directory's id: with the last epoch it held, what makes a
    /// lease this instance's own.
    pub(super) instance: String,
    pub(super) role: Mutex<Role>,
    pub(super) messages: Mutex<Messages>,
    /// Whether voice events reach the tracker (read under the tracker lock).
    pub(super) voice_counts: AtomicBool,
    /// Guilds seen and who is in voice there, as this instance sees it
    /// (kept in every role).
    pub(super) presence: Mutex<(HashSet<u64>, HashMap<MemberKey, Presence>)>,
    /// Voice changes seen while standing by, in order (the oldest go first
    /// past `BUFFER`): a takeover replays those from the handoff moment on,
    /// so joins, camera toggles and leaves during a handover are credited
    /// at their own times.
    pub(super) voice_log: Mutex<VecDeque<(MemberKey, Option<Presence>, Millis)>>,
    /// Held while the role changes (a takeover's steps before and after its
    /// restore, a step-down): renewals run beside a takeover, so a lease
    /// lost during one is handled between its steps, not in the middle.
    pub(super) transition: tokio::sync::Mutex<()>,
    /// The gateway as the lease sees it (`None`: never observed, headless).
    pub(super) gateway: Mutex<Option<GatewaySeen>>,
    /// When the seat was made (a gateway never healthy is unhealthy since).
    pub(super) created: Instant,
    /// Whether a warm standby was seen at the holder's last renewal that
    /// reached MongoDB (a lapsed holder then stops answering).
    pub(super) standby_seen: AtomicBool,
    /// When this standby last announced itself warm.
    pub(super) announced: Mutex<Option<Instant>>,
}

/// The gateway's health, for the lease: a holder cut off from Discord
/// stops renewing, a standby cut off does not take the lease.
#[derive(Clone, Copy, Debug)]
pub(super) struct GatewaySeen {
    pub(super) healthy: bool,
    /// The last observation that found it healthy, if any.
    pub(super) last_healthy: Option<Instant>,
}

impl Seat {
    /// `instance`: the spool directory's id. A restarted holder knows a
    /// lease is its own by it and by the last epoch its spool held (two
    /// processes never share a spool directory: its lock), never by the
    /// hostname, which is only shown.
    pub(super) fn new(ttl: Duration, instance: &str) -> Seat {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let holder = format!("{host}:{instance}");
        let single = ttl.is_zero();
        Seat {
            ttl,
            holder,
            instance: instance.to_owned(),
            role: Mutex::new(if single { Role::Single } else { Role::Standby }),
            messages: Mutex::new(Messages {
                standby: !single,
                ..Messages::default()
            }),
            voice_counts: AtomicBool::new(single),
            presence: Mutex::new((HashSet::new(), HashMap::new())),
            voice_log: Mutex::new(VecDeque::new()),
            transition: tokio::sync::Mutex::new(()),
            gateway: Mutex::new(None),
            created: Instant::now(),
            standby_seen: AtomicBool::new(false),
            announced: Mutex::new(None),
        }
    }

    pub(super) fn role(&self) -> Role {
        *self
            .role
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn set_role(&self, role: Role) {
        *self
            .role
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = role;
    }

    pub(super) fn voice_counts(&self) -> bool {
        self.voice_counts.load(Ordering::SeqCst)
    }

    /// What the gateway watch saw of the link.
    pub(super) fn saw_gateway(&self, link: crate::core::link::Link) {
        let healthy = link == crate::core::link::Link::Healthy;
        let mut seen = self
            .gateway
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last_healthy = if healthy {
            Some(Instant::now())
        } else {
            seen.and_then(|g| g.last_healthy)
        };
        *seen = Some(GatewaySeen {
            healthy,
            last_healthy,
        });
    }

    /// How long the gateway has been unhealthy (down or stalled); `None`:
    /// healthy, or never observed (headless: no gateway to judge).
    pub(super) fn gateway_unhealthy_for(&self) -> Option<Duration> {
        let seen = (*self
            .gateway
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))?;
        (!seen.healthy).then(|| seen.last_healthy.unwrap_or(self.created).elapsed())
    }

    /// Keeps a voice change seen while standing by (call under the tracker
    /// lock, as the takeover replays under it).
    pub(super) fn log_voice(&self, member: MemberKey, presence: Option<Presence>, at: Millis) {
        let mut log = self
            .voice_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if log.len() >= BUFFER {
            log.pop_front();
        }
        log.push_back((member, presence, at));
    }
}

impl App {
    /// This instance's lease, for `/readyz`, `/metrics` and the command check.
    #[must_use]
    pub fn lease(&self) -> Lease {
        match self.seat.role() {
            Role::Single => Lease::SINGLE_INSTANCE,
            Role::Holder { epoch, valid_until } => Lease {
                state: LeaseState::Holder,
                epoch,
                mode: "lease in MongoDB",
                answers: Instant::now() < valid_until
                    || !self.seat.standby_seen.load(Ordering::SeqCst),
            },
            Role::Standby => Lease {
                state: LeaseState::Standby,
                epoch: 0,
                mode: "lease in MongoDB",
                answers: false,
            },
            Role::Provisional { .. } => Lease {
                state: LeaseState::Provisional,
                epoch: 0,
                mode: "lease in MongoDB (not reachable yet)",
                answers: true,
            },
        }
    }

    /// Whether a guild snapshot (`GUILD_CREATE`) was seen since start: the
    /// instance knows who is in voice (warm, for `/readyz`).
    #[must_use]
    pub fn guilds_seen(&self) -> bool {
        !self
            .seat
            .presence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .is_empty()
    }

    /// How often the holder renews the lease: a third of its TTL.
    #[must_use]
    pub fn lease_renew_every(&self) -> Duration {
        self.seat.ttl / 3
    }

    /// Whether the lease is on (`LEASE_TTL_SECS` > 0).
    #[must_use]
    pub fn lease_enabled(&self) -> bool {
        !self.seat.ttl.is_zero()
    }
}
