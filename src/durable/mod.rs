//! Durability: every op is fsynced to a local spool before it is sent, and
//! applied to MongoDB exactly once, in order, with retries.
//!
//! - [`op`]: the spool record ([`op::Op`]) and its on-disk names.
//! - [`spool`]: the append-only file, its record format, sequence numbers.
//! - [`writer`]: the spooler and applier tasks, group commit, shutdown drain.
//! - [`retry`]: backoff and the retry loop around one batch.
//! - [`dead_letters`]: ops a poison document refused, kept for an operator.
//! - `gate`: when the applier may write under a lease, and the fence.
//! - `high_water`: the highest applied sequence number, saved in MongoDB.

mod applier;
pub mod dead_letters;
mod gate;
mod high_water;
pub mod op;
mod outbox;
pub mod retry;
pub mod spool;
mod spooler;
pub mod writer;
