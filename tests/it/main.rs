//! The one integration-test binary: database, Discord simulator, fault proxy and
//! end-to-end scenarios, linked once.
// The simulator's Discord payloads are large `json!` literals.
#![recursion_limit = "256"]

mod adjust;
mod agreement;
mod architecture;
mod boards;
mod calendar;
mod card;
mod db_smoke;
mod dead_letters;
mod deploy;
mod dev_db;
mod e2e;
mod explain;
mod faults;
mod gateway_outage;
mod health;
mod history;
mod leaderboard;
mod lease;
mod lease_faults;
mod lease_handoff;
mod lease_pending;
mod lease_replay;
mod periods;
mod privacy;
mod proxy_smoke;
mod readme_card;
mod render_ud;
mod settings;
mod settings_handover;
mod shutdown;
mod sim_smoke;
mod store_writer;
mod support;
