//! study-tracker: a Discord bot that records how long each member studies in
//! voice channels (camera on and camera off) and how many messages they send,
//! persisted to MongoDB exactly once, through restarts, crashes and outages.
//!
//! # Layout
//! - [`tracker`]: the sans-IO core. Events and time in, credits out. No I/O.
//! - [`op`]: the unit of persistence, built from the tracker's effects.
//! - [`spool`]: the local append-only log every op goes through first.
//! - [`writer`]: spooler + applier: durable, batching, retrying.
//! - [`store`]: the only module that talks to MongoDB.
//! - [`stats`]: pure period sums and the `/ud` renderer.
//! - [`app`]: the service the adapter and the CLI call (tracker + writer + store).
//! - [`discord`]: the serenity/poise adapter and the `/ud` command.
//! - [`config`]: command line and settings.
//! - [`run`]: wiring for each subcommand, used by the thin `main`.
//!
//! See ARCHITECTURE.md for the invariants.

pub mod app;
pub mod config;
pub mod discord;
pub mod op;
pub mod run;
pub mod spool;
pub mod stats;
pub mod store;
pub mod tracker;
pub mod writer;
