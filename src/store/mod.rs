//! The only code that talks to MongoDB: document shapes, indexes, the
//! idempotent batch apply, the start-up test write, the queries behind `/ud`
//! and the legacy import. Nothing else builds BSON.
//!
//! - this file: the [`Store`] handle, connecting, start-up preparation.
//! - [`error`]: transient vs permanent errors (they decide retries).
//! - [`schema`]: collection names, document ids, indexes, BSON conversions.
//! - [`apply`]: the idempotent batch apply; [`statements`] builds its upserts;
//!   [`refusals`]: the write gate asked before each command, fenced refusals.
//! - [`sessions`]: session checkpoints read back at start-up.
//! - [`members`]: a member's numbers for `/ud` and `stats`.
//! - [`periods`]: a member's running day, week and month in `member_stats`
//!   (the steady and the rolling statement); [`carry`]: the one-time carry
//!   of an earlier version's running periods.
//! - [`rollups`]: which message day an op adds to, and how much.
//! - [`leaderboard`]: a page of a ranking, a member's rank;
//!   [`boards`]: the snapshots they are read from, kept in large servers.
//! - [`history`]: a member's latest segments and open checkpoint for `/history`.
//! - [`legacy`]: the one-time import of the previous bot's totals.
//! - [`contact`]: when MongoDB last answered (for `/readyz`).
//! - [`settings`]: each server's settings and their audited change.
//! - [`audit`]: the append-only audit log.
//! - [`corrections`]: the figures a correction is checked against, and the
//!   operator's correction (guarded by its id, not by a sequence number).
//! - [`erasure`]: erasing a member's data, and the tombstones that keep it erased.
//! - [`privacy`]: opt-outs, and everything stored about a member (export).
//!
//! Collections (all `_id`s are strings built from Discord ids, never from
//! anything a member can type):
//! - `member_stats` `{_id: "g:u", guild_id, user_id, voice_cam_on_secs, voice_cam_off_secs, messages, seq}`
//! - `member_stats` also holds `voice_secs` (on + off), `credited_until`, `msg_max`, and the running periods `day`, `week`, `month`: `{key, voice_cam_on_secs, voice_cam_off_secs, messages}` ([`periods`]; `carried`: [`carry`])
//! - `member_days` `{_id: "g:u:YYYY-MM-DD", guild_id, user_id, day, messages, messages_in_periods, seq}` (earlier versions' also hold voice)
//! - `member_weeks` `{_id: "g:u:wYYYY-MM-DD", …}` and `member_months` `{_id: "g:u:mYYYY-MM", …}`: earlier versions' rollups, no longer written (exported, erased)
//! - `voice_segments` `{_id: "g:u:start_ms", guild_id, user_id, channel_id, camera, start, end, secs, seq}`
//! - `voice_sessions` `{_id: "g:u", guild_id, user_id, open, channel_id, camera, segment_start, seq}`
//! - `guild_settings` `{_id: "g", guild_id, timezone, excluded_channels: ["id", ...], streak_min_minutes, version, updated_at, last_change}`
//! - `audit_log` `{_id, guild_id, at, actor_id, action, user_id, what, amount, reason, old, new}` (append-only); a correction's entry (`_id: "adjust:g:id"`, `action: "adjust"`) also has `day`, `correction_id` and `seq`
//! - `corrections_pending` `{_id: "adjust:g:id", op, at}`: an operator's correction until it is applied
//! - `member_privacy` `{_id: "g:u", guild_id, user_id, opted_out, at}`
//! - `erasures` `{_id: "g:u", guild_id, user_id, pending, seq, requested_at, done_at}`
//! - `meta` `{_id: "startup_check", at, pid}`, `{_id: "seq_high_water", seq}`, `{_id: "voice_secs_backfilled", at, fixed}`, `{_id: "periods_carried", at, carried}`

mod apply;
mod audit;
mod boards;
mod carry;
mod contact;
mod corrections;
mod dead_letters;
mod erasure;
mod error;
mod history;
mod leaderboard;
mod lease;
mod legacy;
mod members;
mod meta;
mod periods;
mod privacy;
mod refusals;
mod rollups;
mod schema;
mod server;
mod sessions;
mod settings;
mod standby;
mod statements;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{doc, rawdoc, Bson, DateTime, Document, RawArrayBuf, RawDocumentBuf};
use mongodb::options::{
    ClientOptions, CollectionOptions, ReadConcern, ReadPreference, SelectionCriteria,
};
use mongodb::{Client, Database};

pub use apply::{ApplyProgress, ApplyReport, FailedWrite, WriteGuard, FENCED};
pub use audit::{Actor, AuditEntry};
pub use boards::BoardPolicy;
pub use contact::Contact;
pub use dead_letters::Retried;
pub use erasure::{whole_guild, PendingErasure};
pub use error::StoreError;
pub use lease::{Claimant, Handoff, HandoffIds, LeaseRecord, Taken};
pub use legacy::ImportReport;
pub use privacy::MemberDocuments;
pub use sessions::OpenSessions;
pub use settings::{ChangeError, StoredSettings};

use crate::config::WriteConcern;
use contact::ContactLog;
use error::describe;
use schema::META;
use server::SAFE_STATEMENTS_PER_COMMAND;

/// Handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
    command_timeout: Duration,
    /// Raised from the safe defaults once the server is known (shared by clones).
    statements_per_command: Arc<AtomicUsize>,
    commands_in_flight: Arc<AtomicUsize>,
    /// `w` of the writer's updates.
    write_concern: Bson,
    /// When commands last succeeded and failed (shared by clones).
    contact: Arc<ContactLog>,
    /// Erased members' tombstones (shared by clones; see [`erasure`]).
    tombstones: Arc<erasure::Tombstones>,
    /// Opted-out members, left off the rankings (shared by clones).
    hidden: Arc<privacy::Hidden>,
    /// Kept ranking snapshots (shared by clones; see [`boards`]).
    boards: Arc<boards::Boards>,
}

impl Store {
    /// Parses the URI and prepares a client. Does not wait for the server: the
    /// bot must be able to start during an outage.
    ///
    /// # Errors
    /// The URI cannot be parsed (the message never contains the password).
    pub async fn connect(uri: &str, db_name: &str) -> anyhow::Result<Store> {
        let mut opts = ClientOptions::parse(uri).await.map_err(|e| {
            anyhow::anyhow!(
                "MONGODB_URI ({}) is not a valid MongoDB connection string: {}",
                crate::config::redact_uri(uri),
                crate::config::redact_uri(&describe(&e))
            )
        })?;
        opts.app_name.get_or_insert_with(|| "study-tracker".into());
        opts.server_selection_timeout
            .get_or_insert(Duration::from_secs(5));
        opts.connect_timeout.get_or_insert(Duration::from_secs(5));
        let client = Client::with_options(opts)?;
        Ok(Store::from_database(client.database(db_name)))
    }

    /// The write concern of the writer's updates (default `majority`).
    #[must_use]
    pub fn with_write_concern(mut self, w: WriteConcern) -> Store {
        self.write_concern = match w {
            WriteConcern::Majority => Bson::from("majority"),
            WriteConcern::Nodes(n) => Bson::from(i64::from(n)),
        };
        self
    }

    /// Wraps an existing database handle (tests, tools).
    #[must_use]
    pub fn from_database(db: Database) -> Store {
        Store {
            db,
            command_timeout: Duration::from_secs(15),
            statements_per_command: Arc::new(AtomicUsize::new(SAFE_STATEMENTS_PER_COMMAND)),
            commands_in_flight: Arc::new(AtomicUsize::new(1)),
            write_concern: Bson::from("majority"),
            contact: Arc::default(),
            tombstones: Arc::default(),
            hidden: Arc::default(),
            boards: Arc::default(),
        }
    }

    /// The database this store writes to.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// A collection for reads that decide what to resend or resume: from the
    /// primary, majority-committed (with the default write concern), so a
    /// write a failover rolls back is never taken as applied.
    fn decisive(&self, name: &str) -> mongodb::Collection<Document> {
        // Majority reads see only majority-acknowledged writes: with a
        // weaker write concern they can miss what this process just wrote
        // (a lagging commit point), so then reads are local.
        let concern = if self.write_concern == Bson::from("majority") {
            ReadConcern::majority()
        } else {
            ReadConcern::local()
        };
        self.db.collection_with_options(
            name,
            CollectionOptions::builder()
                .read_concern(concern)
                .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
                .build(),
        )
    }

    /// Runs one database command, bounded by the command timeout, and
    /// records whether MongoDB answered ([`Store::contact`]).
    async fn command(&self, cmd: Document) -> Result<Document, StoreError> {
        let cmd = RawDocumentBuf::from_document(&cmd)
            .map_err(|e| StoreError::Permanent(format!("a command that does not encode: {e}")))?;
        self.command_raw(cmd).await
    }

    /// An `update` of `coll` with these statements (`statements.rs`), not
    /// ordered (one refused statement does not stop the others), at the
    /// store's write concern.
    fn update_command(&self, coll: &str, statements: RawArrayBuf) -> RawDocumentBuf {
        let mut cmd = rawdoc! { "update": coll, "updates": statements, "ordered": false };
        cmd.append(
            "writeConcern",
            statements::raw(&doc! { "w": self.write_concern.clone() }),
        );
        cmd
    }

    /// [`Store::command`] for a command already in BSON.
    async fn command_raw(&self, cmd: RawDocumentBuf) -> Result<Document, StoreError> {
        let result =
            match tokio::time::timeout(self.command_timeout, self.db.run_raw_command(cmd)).await {
                Ok(r) => r.map_err(StoreError::from),
                Err(_) => Err(StoreError::Transient(format!(
                    "no reply within {:?}",
                    self.command_timeout
                ))),
            };
        self.contact.record(&result);
        result
    }

    /// Start-up preparation: learn what the server is, create indexes, give
    /// older totals their all-time ranking key, do the test write.
    ///
    /// # Errors
    /// A step failed.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.detect_server().await?;
        self.ensure_indexes().await?;
        self.ensure_audit_indexes().await?;
        self.backfill_voice_secs_once().await?;
        self.test_write().await
    }

    /// Asks `buildInfo` which server this is and sizes `update` commands for
    /// it: FerretDB keeps the safe size, MongoDB gets larger commands.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn detect_server(&self) -> Result<String, StoreError> {
        let info = self.command(doc! { "buildInfo": 1 }).await?;
        let (server, per_command, in_flight) = server::sizes(&info);
        self.statements_per_command
            .store(per_command, Ordering::Relaxed);
        self.commands_in_flight.store(in_flight, Ordering::Relaxed);
        tracing::info!(server = %server, statements_per_command = per_command, commands_in_flight = in_flight, "connected to the database server");
        Ok(server)
    }

    /// Writes and reads back a document in the `meta` collection: proves the
    /// server accepts writes without creating anything that shows in stats.
    ///
    /// # Errors
    /// The write or the read fails.
    pub async fn test_write(&self) -> Result<(), StoreError> {
        let now = DateTime::now();
        let pid = i64::from(std::process::id());
        self.command(doc! {
            "update": META,
            "updates": [{
                "q": { "_id": "startup_check" },
                "u": { "$set": { "at": now, "pid": pid } },
                "upsert": true,
            }],
        })
        .await?;
        let found = self
            .command(doc! { "find": META, "filter": { "_id": "startup_check" }, "limit": 1 })
            .await?;
        let at = found
            .get_document("cursor")
            .ok()
            .and_then(|c| c.get_array("firstBatch").ok())
            .and_then(|b| b.first())
            .and_then(Bson::as_document)
            .and_then(|d| d.get_datetime("at").ok().copied());
        if at == Some(now) {
            Ok(())
        } else {
            Err(StoreError::Permanent(
                "test write was not read back".to_owned(),
            ))
        }
    }
}
