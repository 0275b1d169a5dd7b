//! The one module that talks to MongoDB: document shapes, indexes, the
//! idempotent batch apply, the start-up test write, the queries behind `/ud`
//! and the legacy import. Nothing else builds BSON.
//!
//! Collections (all `_id`s are strings built from Discord ids, never from
//! anything a member can type):
//! - `member_stats` `{_id: "g:u", guild_id, user_id, voice_cam_on_secs, voice_cam_off_secs, messages, seq}`
//! - `member_days` `{_id: "g:u:YYYY-MM-DD", guild_id, user_id, day, messages, seq}`
//! - `voice_segments` `{_id: "g:u:start_ms", guild_id, user_id, channel_id, camera, start, end, secs, seq}`
//! - `voice_sessions` `{_id: "g:u", guild_id, user_id, open, channel_id, camera, segment_start, seq}`
//! - `meta` `{_id: "startup_check", at, pid}`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};

use crate::op::{Op, Sequenced};
use crate::tracker::{whole_secs, Checkpoint, MemberKey, Millis, VoiceSession};

const MEMBER_STATS: &str = "member_stats";
const MEMBER_DAYS: &str = "member_days";
const VOICE_SEGMENTS: &str = "voice_segments";
const VOICE_SESSIONS: &str = "voice_sessions";
const META: &str = "meta";
const LEGACY_USERS: &str = "users";
/// Write errors with this code mean "this op was already applied".
const DUPLICATE_KEY: i32 = 11000;
/// Statements per `update` command until the server is known. FerretDB v1.24
/// (the test server) stops answering an `update` of 100 or more statements
/// that modify existing documents (observed: 98 take 0.2 s, 100 never
/// return); 64 keeps well clear of that.
const SAFE_STATEMENTS_PER_COMMAND: usize = 64;
/// Statements per `update` command once `buildInfo` shows a real MongoDB
/// (which takes up to 100,000 and 48 MB messages; 1,000 small upserts stay
/// far below both).
const MONGODB_STATEMENTS_PER_COMMAND: usize = 1_000;
/// `update` commands of one batch in flight at once on a real MongoDB. They
/// touch distinct documents, so their order does not matter. FerretDB v1.24
/// stalls on concurrent updates of existing documents, so until the server
/// is known (and on FerretDB) commands go one at a time.
const MONGODB_COMMANDS_IN_FLIGHT: usize = 4;

/// Whether a store error can succeed on retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Network, timeout, server selection, retryable server error.
    #[error("{0}")]
    Transient(String),
    /// Anything else: bad credentials, invalid command, ...
    #[error("{0}")]
    Permanent(String),
}

impl StoreError {
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

impl From<MongoError> for StoreError {
    fn from(e: MongoError) -> Self {
        if is_transient(&e) {
            StoreError::Transient(describe(&e))
        } else {
            StoreError::Permanent(describe(&e))
        }
    }
}

/// One readable line for a driver error (the driver's own `Display` lists
/// the whole topology, labels and sources).
fn describe(e: &MongoError) -> String {
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { message, .. } => {
            let cause = message
                .split("Error: Kind: ")
                .nth(1)
                .and_then(|rest| rest.split(", labels").next())
                .unwrap_or("no server answered");
            format!("cannot reach MongoDB: {cause}")
        }
        ErrorKind::Io(io) => format!("network error talking to MongoDB: {io}"),
        ErrorKind::Command(c) => format!(
            "MongoDB refused the command: {} ({}): {}",
            c.code_name, c.code, c.message
        ),
        ErrorKind::Authentication { message, .. } => {
            format!("MongoDB authentication failed: {message}")
        }
        ErrorKind::InvalidArgument { message, .. } | ErrorKind::DnsResolve { message, .. } => {
            message.clone()
        }
        other => other.to_string(),
    }
}

/// Server error codes that can succeed on retry (the driver's retryable set
/// plus timeouts).
const RETRYABLE_CODES: &[i32] = &[
    6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 134,
];

fn is_transient(e: &MongoError) -> bool {
    if e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError")
        || e.contains_label("RetryableError")
    {
        return true;
    }
    match e.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Shutdown => true,
        ErrorKind::Command(c) => RETRYABLE_CODES.contains(&c.code),
        _ => false,
    }
}

/// What an idempotent apply did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Documents updated or inserted.
    pub applied: u64,
    /// Statements the server had already applied (replays).
    pub replays: u64,
    /// `update` commands sent (round trips).
    pub commands: u64,
}

impl std::ops::AddAssign for ApplyReport {
    fn add_assign(&mut self, o: Self) {
        self.applied += o.applied;
        self.replays += o.replays;
        self.commands += o.commands;
    }
}

/// A member's stored numbers and history, as read for `/ud`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredMember {
    pub cam_on_secs: i64,
    pub cam_off_secs: i64,
    pub messages: i64,
    /// Segments ending after the requested instant.
    pub segments: Vec<StoredSegment>,
    /// Message counts per local day, on or after the requested day.
    pub days: Vec<(String, i64)>,
}

/// One stretch of voice time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredSegment {
    pub camera: bool,
    pub start: Millis,
    pub end: Millis,
}

/// What `import-legacy` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    pub already_imported: u64,
    pub skipped: u64,
}

/// Handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
    command_timeout: Duration,
    /// Raised from the safe defaults once the server is known (shared by clones).
    statements_per_command: Arc<AtomicUsize>,
    commands_in_flight: Arc<AtomicUsize>,
}

/// How far a batch got, so that a retry resumes instead of starting over.
/// Keep one per batch across its attempts.
#[derive(Debug, Default)]
pub struct ApplyProgress {
    /// Statements per command, fixed at the first attempt so that step
    /// numbers mean the same thing in every attempt.
    chunk: Option<usize>,
    done: std::collections::HashSet<usize>,
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
        Ok(Store {
            db: client.database(db_name),
            command_timeout: Duration::from_secs(15),
            statements_per_command: Arc::new(AtomicUsize::new(SAFE_STATEMENTS_PER_COMMAND)),
            commands_in_flight: Arc::new(AtomicUsize::new(1)),
        })
    }

    /// Wraps an existing database handle (tests, tools).
    #[must_use]
    pub fn from_database(db: Database) -> Store {
        Store {
            db,
            command_timeout: Duration::from_secs(15),
            statements_per_command: Arc::new(AtomicUsize::new(SAFE_STATEMENTS_PER_COMMAND)),
            commands_in_flight: Arc::new(AtomicUsize::new(1)),
        }
    }

    /// The database this store writes to.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.db
    }

    async fn run(&self, cmd: Document) -> Result<Document, StoreError> {
        match tokio::time::timeout(self.command_timeout, self.db.run_command(cmd)).await {
            Ok(r) => r.map_err(StoreError::from),
            Err(_) => Err(StoreError::Transient(format!(
                "no reply within {:?}",
                self.command_timeout
            ))),
        }
    }

    /// Creates the indexes the queries need (idempotent).
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn ensure_indexes(&self) -> Result<(), StoreError> {
        let indexes = [
            (
                MEMBER_STATS,
                doc! { "guild_id": 1, "user_id": 1 },
                "by_member",
            ),
            (
                MEMBER_DAYS,
                doc! { "guild_id": 1, "user_id": 1, "day": 1 },
                "by_member_day",
            ),
            (
                VOICE_SEGMENTS,
                doc! { "guild_id": 1, "user_id": 1, "end": 1 },
                "by_member_end",
            ),
            (VOICE_SESSIONS, doc! { "open": 1 }, "by_open"),
        ];
        for (coll, key, name) in indexes {
            self.run(doc! { "createIndexes": coll, "indexes": [{ "key": key, "name": name }] })
                .await?;
        }
        Ok(())
    }

    /// Start-up preparation: learn what the server is, create indexes, do
    /// the test write.
    ///
    /// # Errors
    /// A step failed.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.detect_server().await?;
        self.ensure_indexes().await?;
        self.test_write().await
    }

    /// Asks `buildInfo` which server this is and sizes `update` commands for
    /// it: FerretDB keeps the safe size, MongoDB gets larger commands.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn detect_server(&self) -> Result<String, StoreError> {
        let info = self.run(doc! { "buildInfo": 1 }).await?;
        let version = info.get_str("version").unwrap_or("unknown").to_owned();
        let (server, per_command, in_flight) = match info.get_str("ferretdbVersion") {
            Ok(f) => (format!("FerretDB {f}"), SAFE_STATEMENTS_PER_COMMAND, 1),
            Err(_) => (
                format!("MongoDB {version}"),
                MONGODB_STATEMENTS_PER_COMMAND,
                MONGODB_COMMANDS_IN_FLIGHT,
            ),
        };
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
        self.run(doc! {
            "update": META,
            "updates": [{
                "q": { "_id": "startup_check" },
                "u": { "$set": { "at": now, "pid": pid } },
                "upsert": true,
            }],
        })
        .await?;
        let found = self
            .run(doc! { "find": META, "filter": { "_id": "startup_check" }, "limit": 1 })
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

    /// Applies a batch of ops in one round trip per collection. Ops for the
    /// same document are merged first. Every statement carries the op's
    /// sequence number and only matches a document whose `seq` is lower, so
    /// re-sending a batch that was already (partly) applied changes nothing.
    ///
    /// # Errors
    /// A command failed; the caller retries the whole batch, which is safe.
    pub async fn apply(&self, batch: &[Sequenced]) -> Result<ApplyReport, StoreError> {
        self.apply_resumable(batch, &mut ApplyProgress::default())
            .await
    }

    /// [`Store::apply`] in steps (one `update` command per collection and
    /// chunk of documents, a few in flight at once), skipping the steps
    /// `progress` records as done and recording each one that succeeds. A
    /// retry of the same batch with the same progress resumes where the last
    /// attempt failed instead of redoing finished steps, so every attempt
    /// makes progress even when failures are frequent.
    ///
    /// # Errors
    /// A command failed; the steps that succeeded stay recorded.
    pub async fn apply_resumable(
        &self,
        batch: &[Sequenced],
        progress: &mut ApplyProgress,
    ) -> Result<ApplyReport, StoreError> {
        let chunk = *progress
            .chunk
            .get_or_insert_with(|| self.statements_per_command.load(Ordering::Relaxed));
        let steps: Vec<(usize, &'static str, Vec<DocOps<'_>>)> = group(batch)
            .into_iter()
            .flat_map(|(coll, docs)| {
                docs.chunks(chunk)
                    .map(|c| (coll, c.to_vec()))
                    .collect::<Vec<_>>()
            })
            .enumerate()
            .filter(|(i, _)| !progress.done.contains(i))
            .map(|(i, (coll, docs))| (i, coll, docs))
            .collect();
        let mut report = ApplyReport::default();
        let mut first_error = None;
        let in_flight = self.commands_in_flight.load(Ordering::Relaxed).max(1);
        for wave in steps.chunks(in_flight) {
            let mut in_flight = Vec::with_capacity(wave.len());
            for (i, coll, docs) in wave {
                let fut: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>> =
                    Box::pin(self.update_idempotent(coll, docs.clone()));
                in_flight.push(async move { (*i, fut.await) });
            }
            for (i, result) in futures::future::join_all(in_flight).await {
                match result {
                    Ok(r) => {
                        report += r;
                        progress.done.insert(i);
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            if first_error.is_some() {
                break;
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Sends one statement per document until each is applied or known to
    /// have been applied before.
    ///
    /// A duplicate key on the seq-guarded upsert means the document has
    /// already seen some of the statement's ops. Servers differ in what else
    /// they tell: MongoDB honours `ordered: false` and reports the failing
    /// index; FerretDB stops at the first error and always reports index 0.
    /// So after duplicates, the `seq` of every document from the first
    /// reported error on is read back, the ops it already has are dropped,
    /// and the rest is sent again. Any other write error, or a write concern
    /// error, fails the whole call (transient or permanent by its code): the
    /// caller retries, and nothing is ever skipped.
    async fn update_idempotent(
        &self,
        coll: &str,
        mut docs: Vec<DocOps<'_>>,
    ) -> Result<ApplyReport, StoreError> {
        let mut report = ApplyReport::default();
        while !docs.is_empty() {
            let statements: Vec<Document> = docs.iter().map(DocOps::statement).collect();
            let reply = self
                .run(doc! { "update": coll, "updates": statements, "ordered": false })
                .await?;
            report.commands += 1;
            if let Ok(wce) = reply.get_document("writeConcernError") {
                return Err(StoreError::Transient(format!(
                    "write concern not satisfied on {coll}: {}",
                    wce.get_str("errmsg").unwrap_or_default()
                )));
            }
            let errors = write_errors(&reply);
            let Some(first) = errors.iter().map(|e| e.0).min() else {
                report.applied += docs.len() as u64;
                break;
            };
            if let Some((_, code, msg)) = errors.iter().find(|e| e.1 != DUPLICATE_KEY) {
                let e = format!("MongoDB refused a write to {coll} (code {code}): {msg}");
                return Err(if RETRYABLE_CODES.contains(code) {
                    StoreError::Transient(e)
                } else {
                    StoreError::Permanent(e)
                });
            }
            // Only duplicates: statements before `first` were applied; from
            // `first` on, ask each document how far it got.
            let first = first.min(docs.len());
            report.applied += first as u64;
            let mut unsure = docs.split_off(first);
            let seqs = self.doc_seqs(coll, &unsure).await?;
            let mut dropped = 0;
            for d in &mut unsure {
                let applied_up_to = seqs.get(&d.id).copied().unwrap_or(0);
                let before = d.ops.len();
                d.ops.retain(|o| o.seq > applied_up_to);
                dropped += before - d.ops.len();
            }
            if first == 0 && dropped == 0 {
                // The same command would fail the same way: the duplicate is
                // not a replay (another unique index on the collection?).
                return Err(StoreError::Permanent(format!(
                    "duplicate key on {coll} that is not a replay: {}",
                    errors.first().map_or("", |e| e.2.as_str())
                )));
            }
            report.replays += dropped as u64;
            unsure.retain(|d| !d.ops.is_empty());
            docs = unsure;
        }
        Ok(report)
    }

    /// The `seq` of each of these documents.
    async fn doc_seqs(
        &self,
        coll: &str,
        docs: &[DocOps<'_>],
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        let found: Vec<Document> = self
            .db
            .collection::<Document>(coll)
            .find(doc! { "_id": { "$in": ids } })
            .projection(doc! { "seq": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(found
            .iter()
            .filter_map(|d| {
                let id = d.get_str("_id").ok()?.to_owned();
                let seq = u64::try_from(int(d, "seq")).ok()?;
                Some((id, seq))
            })
            .collect())
    }

    /// Open session checkpoints, with the moment each was last credited (the
    /// end of its open segment).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn open_sessions(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let sessions: Vec<Document> = self
            .db
            .collection::<Document>(VOICE_SESSIONS)
            .find(doc! { "open": true })
            .await?
            .try_collect()
            .await?;
        let mut out = Vec::with_capacity(sessions.len());
        for s in sessions {
            let (Ok(g), Ok(u), Ok(ch), Ok(cam), Ok(start)) = (
                s.get_i64("guild_id"),
                s.get_i64("user_id"),
                s.get_i64("channel_id"),
                s.get_bool("camera"),
                s.get_datetime("segment_start"),
            ) else {
                tracing::warn!(session = %s, "ignoring malformed session checkpoint");
                continue;
            };
            let member = MemberKey {
                guild: from_i64(g),
                user: from_i64(u),
            };
            let start = start.timestamp_millis();
            let end = self
                .db
                .collection::<Document>(VOICE_SEGMENTS)
                .find_one(doc! { "_id": segment_id(member, start) })
                .await?
                .and_then(|d| d.get_datetime("end").ok().map(|e| e.timestamp_millis()))
                .unwrap_or(start);
            out.push(Checkpoint {
                member,
                session: VoiceSession {
                    channel: from_i64(ch),
                    camera: cam,
                    segment_start: start,
                    last_credit: end,
                },
            });
        }
        Ok(out)
    }

    /// A member's totals, segments ending after `segments_since` and message
    /// counts on days from `days_since` (`YYYY-MM-DD`).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn member(
        &self,
        member: MemberKey,
        segments_since: Millis,
        days_since: &str,
    ) -> Result<StoredMember, StoreError> {
        let (g, u) = (to_i64(member.guild), to_i64(member.user));
        let totals = self
            .db
            .collection::<Document>(MEMBER_STATS)
            .find_one(doc! { "_id": member_id(member) })
            .await?
            .unwrap_or_default();
        let segments: Vec<Document> = self
            .db
            .collection::<Document>(VOICE_SEGMENTS)
            .find(doc! { "guild_id": g, "user_id": u, "end": { "$gt": DateTime::from_millis(segments_since) } })
            .await?
            .try_collect()
            .await?;
        let days: Vec<Document> = self
            .db
            .collection::<Document>(MEMBER_DAYS)
            .find(doc! { "guild_id": g, "user_id": u, "day": { "$gte": days_since } })
            .await?
            .try_collect()
            .await?;
        Ok(StoredMember {
            cam_on_secs: int(&totals, "voice_cam_on_secs"),
            cam_off_secs: int(&totals, "voice_cam_off_secs"),
            messages: int(&totals, "messages"),
            segments: segments
                .iter()
                .filter_map(|s| {
                    Some(StoredSegment {
                        camera: s.get_bool("camera").ok()?,
                        start: s.get_datetime("start").ok()?.timestamp_millis(),
                        end: s.get_datetime("end").ok()?.timestamp_millis(),
                    })
                })
                .collect(),
            days: days
                .iter()
                .filter_map(|d| Some((d.get_str("day").ok()?.to_owned(), int(d, "messages"))))
                .collect(),
        })
    }

    /// Adds the previous bot's totals (collection `users`) to `guild`, once
    /// per member: a marker on the member's document makes a second run a no-op.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn import_legacy(&self, guild: u64) -> Result<ImportReport, StoreError> {
        let users: Vec<Document> = self
            .db
            .collection::<Document>(LEGACY_USERS)
            .find(doc! {})
            .await?
            .try_collect()
            .await?;
        let mut report = ImportReport::default();
        for user in users {
            let id = match user.get("_id") {
                Some(Bson::String(s)) => s.parse::<u64>().ok(),
                Some(Bson::Int64(i)) => u64::try_from(*i).ok(),
                _ => None,
            };
            let Some(id) = id else {
                if user.get_str("_id") != Ok("mongodb_test") {
                    tracing::warn!(id = ?user.get("_id"), "legacy document without a numeric user id; skipped");
                }
                report.skipped += 1;
                continue;
            };
            let data = user.get_document("data").cloned().unwrap_or_default();
            let on_min = int(&data, "voice_cam_on_minutes");
            let off_min = int(&data, "voice_cam_off_minutes");
            let messages = int(&data, "message_count");
            let member = MemberKey { guild, user: id };
            let update = doc! {
                "update": MEMBER_STATS,
                "updates": [{
                    "q": { "_id": member_id(member), "legacy_import": { "$exists": false } },
                    "u": {
                        "$inc": {
                            "voice_cam_on_secs": on_min * 60,
                            "voice_cam_off_secs": off_min * 60,
                            "messages": messages,
                        },
                        "$set": {
                            "guild_id": to_i64(guild),
                            "user_id": to_i64(id),
                            "legacy_import": {
                                "at": DateTime::now(),
                                "voice_cam_on_minutes": on_min,
                                "voice_cam_off_minutes": off_min,
                                "message_count": messages,
                            },
                        },
                        // Ops only match documents with a lower `seq`.
                        "$setOnInsert": { "seq": 0_i64 },
                    },
                    "upsert": true,
                }],
            };
            // A duplicate key means the document exists with the marker, or
            // the bot created it a moment ago: then the update matches now.
            let mut outcome = None;
            for _ in 0..3 {
                let reply = self.run(update.clone()).await?;
                match write_errors(&reply).first() {
                    None => {
                        outcome = Some(true);
                        break;
                    }
                    Some((_, DUPLICATE_KEY, _)) => {
                        let marked = self
                            .db
                            .collection::<Document>(MEMBER_STATS)
                            .find_one(doc! { "_id": member_id(member), "legacy_import": { "$exists": true } })
                            .await?
                            .is_some();
                        if marked {
                            outcome = Some(false);
                            break;
                        }
                    }
                    Some((_, code, msg)) => {
                        return Err(StoreError::Permanent(format!(
                            "import of user {id} rejected (code {code}): {msg}"
                        )))
                    }
                }
            }
            match outcome {
                Some(true) => report.imported += 1,
                Some(false) => report.already_imported += 1,
                None => {
                    return Err(StoreError::Transient(format!(
                        "import of user {id} kept colliding with live writes; run it again"
                    )))
                }
            }
        }
        Ok(report)
    }
}

/// One document's share of a batch: the ops that touch it, in seq order.
/// They become one statement guarded by `seq < first op's seq`, which sets
/// `seq` to the last op's. A document's ops are always applied in seq order
/// and a statement applies all of its ops or none, so the applied ops of a
/// document are always a prefix, and `seq` says exactly where it ends.
#[derive(Clone, Debug)]
struct DocOps<'a> {
    coll: &'static str,
    id: String,
    ops: Vec<&'a Sequenced>,
}

impl DocOps<'_> {
    fn first_seq(&self) -> u64 {
        self.ops.first().map_or(0, |o| o.seq)
    }

    fn last_seq(&self) -> u64 {
        self.ops.last().map_or(0, |o| o.seq)
    }

    /// The upsert statement for these ops.
    fn statement(&self) -> Document {
        let Some(first) = self.ops.first() else {
            return Document::new();
        };
        let key = first.op.member();
        let mut set = doc! {
            "guild_id": to_i64(key.guild),
            "user_id": to_i64(key.user),
            "seq": seq_bson(self.last_seq()),
        };
        let mut update = Document::new();
        match self.coll {
            MEMBER_STATS => {
                let (mut on, mut off, mut messages) = (0_i64, 0_i64, 0_i64);
                for o in &self.ops {
                    match &o.op {
                        Op::Voice {
                            cam: true,
                            from,
                            to,
                            ..
                        } => on += whole_secs(*from, *to),
                        Op::Voice { from, to, .. } => off += whole_secs(*from, *to),
                        Op::Message { .. } => messages += 1,
                        Op::Session { .. } => {}
                    }
                }
                update.insert(
                    "$inc",
                    doc! { "voice_cam_on_secs": on, "voice_cam_off_secs": off, "messages": messages },
                );
            }
            MEMBER_DAYS => {
                if let Op::Message { day, .. } = &first.op {
                    set.insert("day", day.clone());
                }
                update.insert("$inc", doc! { "messages": self.ops.len() as i64 });
            }
            VOICE_SEGMENTS => {
                let (mut secs, mut end) = (0_i64, i64::MIN);
                for o in &self.ops {
                    if let Op::Voice {
                        ch,
                        cam,
                        seg,
                        from,
                        to,
                        ..
                    } = &o.op
                    {
                        secs += whole_secs(*from, *to);
                        end = end.max(*to);
                        set.insert("channel_id", to_i64(*ch));
                        set.insert("camera", *cam);
                        set.insert("start", DateTime::from_millis(*seg));
                    }
                }
                update.insert("$inc", doc! { "secs": secs });
                update.insert("$max", doc! { "end": DateTime::from_millis(end) });
            }
            _ => {
                // VOICE_SESSIONS: the last checkpoint wins.
                if let Some(Op::Session { open, .. }) = self.ops.last().map(|o| &o.op) {
                    set.insert("open", open.is_some());
                    set.insert("updated_at", DateTime::now());
                    if let Some(o) = open {
                        set.insert("channel_id", to_i64(o.ch));
                        set.insert("camera", o.cam);
                        set.insert("segment_start", DateTime::from_millis(o.seg));
                    }
                }
            }
        }
        update.insert("$set", set);
        doc! {
            // `$not: {$gte}` also matches a document that has no `seq` yet.
            "q": { "_id": &self.id, "seq": { "$not": { "$gte": seq_bson(self.first_seq()) } } },
            "u": update,
            "upsert": true,
        }
    }
}

/// Groups a batch per collection and document, keeping seq order.
fn group(batch: &[Sequenced]) -> Vec<(&'static str, Vec<DocOps<'_>>)> {
    let mut by_doc: BTreeMap<(&'static str, String), Vec<&Sequenced>> = BTreeMap::new();
    for rec in batch {
        let key = rec.op.member();
        let targets: Vec<(&'static str, String)> = match &rec.op {
            Op::Voice { seg, .. } => vec![
                (MEMBER_STATS, member_id(key)),
                (VOICE_SEGMENTS, segment_id(key, *seg)),
            ],
            Op::Message { day, .. } => vec![
                (MEMBER_STATS, member_id(key)),
                (MEMBER_DAYS, format!("{}:{day}", member_id(key))),
            ],
            Op::Session { .. } => vec![(VOICE_SESSIONS, member_id(key))],
        };
        for t in targets {
            by_doc.entry(t).or_default().push(rec);
        }
    }
    let mut out: Vec<(&'static str, Vec<DocOps<'_>>)> =
        [MEMBER_STATS, MEMBER_DAYS, VOICE_SEGMENTS, VOICE_SESSIONS]
            .into_iter()
            .map(|c| (c, Vec::new()))
            .collect();
    for ((coll, id), mut ops) in by_doc {
        ops.sort_by_key(|o| o.seq);
        if let Some((_, docs)) = out.iter_mut().find(|(c, _)| *c == coll) {
            docs.push(DocOps { coll, id, ops });
        }
    }
    out.retain(|(_, docs)| !docs.is_empty());
    out
}

fn member_id(k: MemberKey) -> String {
    format!("{}:{}", k.guild, k.user)
}

fn segment_id(k: MemberKey, start: Millis) -> String {
    format!("{}:{}:{start}", k.guild, k.user)
}

/// `(index, code, message)` of each write error in an `update` reply.
fn write_errors(reply: &Document) -> Vec<(usize, i32, String)> {
    reply
        .get_array("writeErrors")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|e| {
                    (
                        usize::try_from(e.get_i32("index").unwrap_or(0)).unwrap_or(0),
                        e.get_i32("code").unwrap_or(0),
                        e.get_str("errmsg").unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Discord snowflakes fit in 63 bits; stored as BSON int64.
#[allow(clippy::cast_possible_wrap)]
fn to_i64(id: u64) -> i64 {
    id as i64
}

#[allow(clippy::cast_sign_loss)]
fn from_i64(id: i64) -> u64 {
    id as u64
}

#[allow(clippy::cast_possible_wrap)]
fn seq_bson(seq: u64) -> i64 {
    seq as i64
}

/// An integer field, whatever numeric type the writer used (the previous bot
/// wrote int32 and doubles).
#[allow(clippy::cast_possible_truncation)]
fn int(d: &Document, key: &str) -> i64 {
    match d.get(key) {
        Some(Bson::Int32(i)) => i64::from(*i),
        Some(Bson::Int64(i)) => *i,
        Some(Bson::Double(f)) => f.round() as i64,
        _ => 0,
    }
}
