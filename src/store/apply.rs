//! The idempotent batch apply: merged per document, sized for the server,
//! resumable after a failed command (ARCHITECTURE.md, "Exactly once").

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document, RawArrayBuf};

use super::error::{HOLD_CODES, RETRYABLE_CODES};
use super::refusals::{about_the_collection, fenced_write, first_refusal};
pub use super::refusals::{WriteGuard, FENCED};
use super::schema::{int, DUPLICATE_KEY, MEMBER_STATS};
use super::statements::{group, DocOps};
use super::{Store, StoreError};
use crate::durable::op::Sequenced;

/// What an idempotent apply did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Documents updated or inserted.
    pub applied: u64,
    /// Statements the server had already applied (replays).
    pub replays: u64,
    /// `update` commands sent (round trips).
    pub commands: u64,
    /// Ops this process appended, sent for the first time, that the server
    /// had newer writes for: never a genuine replay (a clock behind the
    /// previous host's, or another process writing), so never silent.
    pub seq_anomalies: u64,
    /// Ops of an older lease epoch refused (fencing); not applied.
    pub fenced: u64,
}

impl std::ops::AddAssign for ApplyReport {
    fn add_assign(&mut self, o: Self) {
        self.applied += o.applied;
        self.replays += o.replays;
        self.commands += o.commands;
        self.seq_anomalies += o.seq_anomalies;
        self.fenced += o.fenced;
    }
}

/// How far a batch got, so that a retry resumes instead of starting over.
/// Keep one per batch across its attempts.
#[derive(Debug, Default)]
pub struct ApplyProgress {
    /// Statements per command, fixed at the first attempt so that step
    /// numbers mean the same thing in every attempt.
    chunk: Option<usize>,
    pub(super) done: std::collections::HashSet<usize>,
    /// Ops with a sequence number from here on were appended by this
    /// process (none were sent before it started): a duplicate for one of
    /// them is an anomaly, not a replay. `None`: not known.
    pub fresh_from: Option<u64>,
    /// Documents that refused their statement for good (a poison document:
    /// a type mismatch, a validation rule): their ops were not applied to
    /// them, and the rest of the batch went on without them.
    pub failed: Vec<FailedWrite>,
    /// `(seq, "collection/_id")` of ops already set aside as dead letters:
    /// never applied through the normal path (a replay after a crash).
    pub excluded: std::collections::HashSet<(u64, String)>,
    /// Asked before every command (see [`WriteGuard`]); `None`: always.
    pub may_write: Option<WriteGuard>,
    /// Ops kept by the first attempt (see `store/erasure.rs`).
    pub(super) kept: Option<usize>,
    /// Set (for good) once every `member_stats` step is done: the batch's
    /// resume points are written, so the rest of it goes out whatever
    /// `may_write` says (ARCHITECTURE.md, "The lease": finishing a batch).
    pub started: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// A statement one document refused permanently (or as fenced: [`FENCED`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedWrite {
    pub collection: &'static str,
    pub document: String,
    /// Sequence numbers of the ops it carried.
    pub seqs: Vec<u64>,
    /// The server's error code.
    pub code: i32,
    pub error: String,
}

impl ApplyProgress {
    /// Progress of a batch whose ops from `fresh_from` on this process appended.
    #[must_use]
    pub fn fresh_from(seq: u64) -> ApplyProgress {
        ApplyProgress {
            fresh_from: Some(seq),
            ..ApplyProgress::default()
        }
    }
}

impl Store {
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
        // Erased members' ops never reach a statement (store/erasure.rs).
        let kept = self.without_erased(batch, progress).await?;
        let batch = kept.as_deref().unwrap_or(batch);
        let chunk = *progress
            .chunk
            .get_or_insert_with(|| self.statements_per_command.load(Ordering::Relaxed));
        let all: Vec<(usize, (&'static str, Vec<DocOps<'_>>))> = group(batch, &progress.excluded)
            .into_iter()
            .flat_map(|(coll, docs)| {
                docs.chunks(chunk)
                    .map(|c| (coll, c.to_vec()))
                    .collect::<Vec<_>>()
            })
            .enumerate()
            .collect();
        let stats: Vec<usize> = all
            .iter()
            .filter(|s| s.1 .0 == MEMBER_STATS)
            .map(|s| s.0)
            .collect();
        let steps: Vec<(usize, &'static str, Vec<DocOps<'_>>)> = all
            .into_iter()
            .filter(|(i, _)| !progress.done.contains(i))
            .map(|(i, (coll, docs))| (i, coll, docs))
            .collect();
        let mut report = ApplyReport::default();
        let mut first_error = None;
        // Up to `in_flight` commands at once, a new one as soon as one
        // returns (no waves: a slow command does not idle the others). After
        // an error nothing new starts; those in flight are awaited, so what
        // they did is recorded.
        let in_flight = self.commands_in_flight.load(Ordering::Relaxed).max(1);
        let fresh_from = progress.fresh_from.unwrap_or(u64::MAX);
        let guard = WriteGuard::waived_once_started(progress.may_write.clone(), &progress.started);
        let guard = guard.as_ref();
        let mut steps = steps.into_iter().peekable();
        let mut running = futures::stream::FuturesUnordered::new();
        loop {
            while first_error.is_none() && running.len() < in_flight {
                // The resume points (`member_stats`) first: nothing else of
                // the batch goes out before all of them are written.
                let stats_done = stats.iter().all(|s| progress.done.contains(s));
                if !stats_done && steps.peek().is_some_and(|s| s.1 != MEMBER_STATS) {
                    break;
                }
                let Some((i, coll, docs)) = steps.next() else {
                    break;
                };
                running.push(async move {
                    (
                        i,
                        self.update_idempotent(coll, docs, fresh_from, guard).await,
                    )
                });
            }
            let Some((i, result)) = futures::StreamExt::next(&mut running).await else {
                break;
            };
            match result {
                Ok((r, failed)) => {
                    report += r;
                    progress.failed.extend(failed);
                    progress.done.insert(i);
                    if stats.iter().all(|s| progress.done.contains(s)) {
                        progress.started.store(true, Ordering::SeqCst);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
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
    /// and the rest is sent again. A write concern error, or a write error
    /// with a retryable code, fails the whole call (the caller retries).
    /// Another write error is one document refusing its statement for good:
    /// the statements are then sent one at a time, and the documents that
    /// refuse are reported in the second value (the rest applies), so one
    /// poison document cannot hold everyone's increments.
    async fn update_idempotent(
        &self,
        coll: &str,
        docs: Vec<DocOps<'_>>,
        fresh_from: u64,
        guard: Option<&WriteGuard>,
    ) -> Result<(ApplyReport, Vec<FailedWrite>), StoreError> {
        let (mut report, mut failed, split) =
            self.update_docs(coll, docs, fresh_from, guard).await?;
        let alone = split.len();
        for d in split {
            let (r, f, rest) = self.update_docs(coll, vec![d], fresh_from, guard).await?;
            debug_assert!(rest.is_empty(), "a single statement never splits");
            report += r;
            failed.extend(f);
        }
        if about_the_collection(&failed, alone) {
            return Err(StoreError::Permanent(format!(
                "every document of {coll} refused its write: {}",
                first_refusal(&failed)
            )));
        }
        Ok((report, failed))
    }

    /// [`Store::update_idempotent`]'s loop; returns the documents still to
    /// send one at a time when a statement among several was refused.
    async fn update_docs<'a>(
        &self,
        coll: &str,
        mut docs: Vec<DocOps<'a>>,
        fresh_from: u64,
        guard: Option<&WriteGuard>,
    ) -> Result<(ApplyReport, Vec<FailedWrite>, Vec<DocOps<'a>>), StoreError> {
        let mut report = ApplyReport::default();
        let mut failed = Vec::new();
        while !docs.is_empty() {
            WriteGuard::check(guard)?; // before every command, re-sends too
            let mut statements = RawArrayBuf::new();
            for d in &docs {
                statements.push(d.statement());
            }
            let reply = self
                .command_raw(self.update_command(coll, statements))
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
                if RETRYABLE_CODES.contains(code) {
                    return Err(StoreError::Transient(e));
                }
                if HOLD_CODES.contains(code) {
                    // About every document (rights, quota, disk): hold all
                    // writes, loudly, rather than set them all aside.
                    return Err(StoreError::Permanent(e));
                }
                // One document refused its statement for good. Servers
                // differ in how they report which (FerretDB always says
                // index 0), so each statement goes alone until the poison
                // ones are known; the others apply (or are replays).
                if let [poison] = docs.as_slice() {
                    failed.push(FailedWrite {
                        collection: poison.coll,
                        document: poison.id.clone(),
                        seqs: poison.ops.iter().map(|o| o.seq).collect(),
                        code: *code,
                        error: e,
                    });
                    break;
                }
                return Ok((report, failed, docs));
            }
            // Only duplicates: statements before `first` were applied; from
            // `first` on, ask each document how far it got.
            let first = first.min(docs.len());
            report.applied += first as u64;
            let mut unsure = docs.split_off(first);
            let seqs = self.doc_seqs(coll, &unsure).await?;
            let (mut dropped, mut fenced) = (0, 0);
            for d in &mut unsure {
                let (applied_up_to, doc_epoch) = seqs.get(&d.id).copied().unwrap_or((0, 0));
                if d.fenced_by(doc_epoch) {
                    (fenced, dropped) = (fenced + d.ops.len(), dropped + d.ops.len());
                    failed.push(fenced_write(d.coll, &d.id, &d.ops, doc_epoch));
                    d.ops.clear();
                    continue;
                }
                // A genuine replay leaves the document at one of these ops'
                // numbers; anything else newer came from elsewhere.
                let foreign = d.first_seq() >= fresh_from
                    && applied_up_to >= d.first_seq()
                    && !d.ops.iter().any(|o| o.seq == applied_up_to);
                let before = d.ops.len();
                d.ops.retain(|o| o.seq > applied_up_to);
                let gone = before - d.ops.len();
                dropped += gone;
                if foreign {
                    report.seq_anomalies += gone as u64;
                    tracing::error!(
                        collection = coll,
                        document = %d.id,
                        document_seq = applied_up_to,
                        ops = gone,
                        consequence = "these increments are not applied",
                        "MongoDB holds newer writes for a document this process writes for the first time (a host clock behind the previous one's?)"
                    );
                }
            }
            // A `member_stats` statement in the steady shape that did not
            // match may have met other period keys (the member's first op
            // of a new period): it goes again in the rolling shape, which
            // matches whatever keys are stored (`store/periods.rs`).
            let mut rolled = 0;
            if coll == MEMBER_STATS {
                for d in unsure.iter_mut().filter(|d| !d.ops.is_empty() && !d.rolled) {
                    d.rolled = true;
                    rolled += 1;
                }
            }
            if first == 0 && dropped == 0 && rolled == 0 {
                // The same command would fail the same way: the duplicate is
                // not a replay (another unique index on the collection?).
                return Err(StoreError::Permanent(format!(
                    "duplicate key on {coll} that is not a replay: {}",
                    errors.first().map_or("", |e| e.2.as_str())
                )));
            }
            report.replays += (dropped - fenced) as u64;
            report.fenced += fenced as u64;
            unsure.retain(|d| !d.ops.is_empty());
            docs = unsure;
        }
        Ok((report, failed, Vec::new()))
    }

    /// The `seq` of each of these documents.
    pub(super) async fn doc_seqs(
        &self,
        coll: &str,
        docs: &[DocOps<'_>],
    ) -> Result<HashMap<String, (u64, u64)>, StoreError> {
        let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        let read = async {
            self.decisive(coll)
                .find(doc! { "_id": { "$in": ids } })
                .projection(doc! { "seq": 1, "epoch": 1 })
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        let found = tokio::time::timeout(self.command_timeout, read)
            .await
            .map_err(|_| {
                StoreError::Transient(format!(
                    "reading back {coll} sequence numbers: no reply within {:?}",
                    self.command_timeout
                ))
            })??;
        Ok(found
            .iter()
            .filter_map(|d| {
                let id = d.get_str("_id").ok()?.to_owned();
                let seq = u64::try_from(int(d, "seq")).ok()?;
                let epoch = u64::try_from(int(d, "epoch")).unwrap_or(0);
                Some((id, (seq, epoch)))
            })
            .collect())
    }
}

/// `(index, code, message)` of each write error in an `update` reply.
pub(super) fn write_errors(reply: &Document) -> Vec<(usize, i32, String)> {
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
