//! study-tracker: a Discord bot that records how long each member studies in
//! voice channels (camera on and camera off) and how many messages they send,
//! persisted to MongoDB exactly once, through restarts, crashes and outages.
//!
//! # Layout
//! Each folder is one layer; see ARCHITECTURE.md for the code map and the
//! invariants.
//! - [`core`]: sans-IO and infallible: tracker, policy, periods, stats.
//! - [`durable`]: the spool record, the spool, the writer and its retries.
//! - [`store`]: the only code that talks to MongoDB.
//! - [`app`]: the service the adapters call (tracker + writer + store).
//! - [`discord`]: the serenity/poise adapter, one file per slash command.
//! - [`http`]: the health and metrics listener (`/healthz`, `/readyz`, `/metrics`).
//! - [`render`]: pure renderers of what members read.
//! - [`cmd`]: the CLI subcommands other than `run`.
//! - [`startup`]: the one wiring of a running bot ([`startup::Application`]).
//! - [`cli`], [`config`], [`telemetry`]: command line, typed settings, logging
//!   and metrics.

#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod core;
pub mod discord;
pub mod durable;
pub mod http;
pub mod render;
pub mod startup;
pub mod store;
pub mod telemetry;
