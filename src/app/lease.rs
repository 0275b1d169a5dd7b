//! Whether this instance may count: the seam the lease will replace.
//!
//! There is no lease yet. The bot must run as a single instance per Discord
//! application (README, "Known limits"), so every instance is the only one
//! and holds the lease, at epoch 0. `/readyz` and `/metrics` read the lease
//! from [`App::lease`] and nowhere else, so the lease work replaces that one
//! function (and [`Lease::SINGLE_INSTANCE`]) and both follow.

use super::App;

/// This instance's part in the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// It counts.
    Holder,
    /// Another instance counts; this one waits to take over.
    Standby,
}

impl LeaseState {
    /// Every state, for metrics (one gauge per state).
    pub const ALL: [LeaseState; 2] = [LeaseState::Holder, LeaseState::Standby];

    /// The state's name in `/readyz` and `/metrics`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            LeaseState::Holder => "holder",
            LeaseState::Standby => "standby",
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
}

impl Lease {
    /// Today's lease: no lease, a single instance, which therefore holds it.
    pub const SINGLE_INSTANCE: Lease = Lease {
        state: LeaseState::Holder,
        epoch: 0,
        mode: "single instance (no lease yet)",
    };

    /// Whether this instance counts.
    #[must_use]
    pub fn held(&self) -> bool {
        self.state == LeaseState::Holder
    }
}

impl App {
    /// This instance's lease (the seam: see the module docs).
    // The lease work keeps its state in `self`; today there is none.
    #[allow(clippy::unused_self)]
    #[must_use]
    pub fn lease(&self) -> Lease {
        Lease::SINGLE_INSTANCE
    }
}
