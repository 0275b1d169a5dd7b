//! The applier task: reads batches from the spool, applies them (with
//! retries), sets aside what a document refuses for good, and commits.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dead_letters::{set_aside, DeadLetter, DeadLetters};
use super::high_water::HighWater;
use super::op::Sequenced;
use super::outbox::Outbox;
use super::retry::apply_with_retry;
use super::spool::Spool;
use super::writer::{Shared, WriterOptions};
use crate::store::{FailedWrite, Store, FENCED};
use crate::telemetry::{cause_chain, prometheus as metric};

/// Longest wait for the rest of a burst to reach the spool before a batch
/// is read (group commit; see `gather`).
const GATHER: Duration = Duration::from_millis(5);

/// While the spooler is still bringing ops to disk (some wait in the outbox
/// or are being appended), waits up to [`GATHER`] so that they join this
/// batch instead of costing another round trip per collection: a burst
/// arriving while the first of its ops is appended otherwise splits in two
/// batches.
async fn gather(shared: &Shared, outbox: &Outbox) {
    let started = std::time::Instant::now();
    while (shared.appending.load(Ordering::Acquire) > 0 || outbox.len() > 0)
        && started.elapsed() < GATHER
    {
        tokio::select! {
            () = shared.wake_applier.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    }
}

pub(super) async fn run_applier(
    outbox: Arc<Outbox>,
    store: Store,
    spool: Arc<Spool>,
    dead: DeadLetters,
    shared: Arc<Shared>,
    opts: WriterOptions,
    stop: CancellationToken,
) {
    let mut high_water = HighWater::default();
    let fenced = DeadLetters::fenced_in_dir(dead.path().parent().unwrap_or(Path::new(".")));
    // Ops set aside as dead letters (this run or earlier ones): a replay of
    // the spool must not apply them through the normal path.
    let mut excluded: HashSet<(u64, String)> = dead
        .read()
        .unwrap_or_default()
        .iter()
        .map(|l| (l.seq, l.target()))
        .collect();
    loop {
        gather(&shared, &outbox).await;
        let s = spool.clone();
        let max = opts.apply_batch;
        let batch = match tokio::task::spawn_blocking(move || s.read_batch(max)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::error!(error = %cause_chain(&e), retry_in_secs = 1, "cannot read the spool");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %cause_chain(&e), "spool reader task failed");
                continue;
            }
        };
        shared.oldest_unapplied_seq.store(
            batch.records.first().map_or(0, |r| r.seq),
            Ordering::Relaxed,
        );
        if batch.records.is_empty() {
            tokio::select! {
                () = shared.wake_applier.notified() => {}
                () = stop.cancelled() => {
                    // The writer's tasks get 1 s to stop.
                    high_water.flush(&store, Duration::from_millis(800)).await;
                    return;
                }
            }
            continue;
        }
        // The mark covers a batch before any of it can reach a document,
        // so even a batch cut half way is below it.
        high_water.applied(batch.records.iter().map(|r| r.seq).max().unwrap_or(0));
        high_water.maybe_flush(&store).await;
        let fresh_from = spool.own_from();
        let Some((live, started)) =
            set_aside_fenced(&store, &fenced, &batch.records, &shared).await
        else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        // A batch has one epoch. If the lease is lost while it waits for the
        // gate (or retries) before it has started, it is read again and set
        // aside; a started batch is finished (`apply_with_retry`).
        let applied = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            r = apply_with_retry(&store, &live, &shared, opts.retry, fresh_from, &excluded, started) => r,
        };
        let Some((report, failed)) = applied else {
            continue;
        };
        // Refused by the store's fence (a newer epoch wrote the document):
        // set aside like the ops fenced here, never counted as applied.
        let (refused, failed): (Vec<FailedWrite>, Vec<FailedWrite>) =
            failed.into_iter().partition(|f| f.code == FENCED);
        let refused_seqs: HashSet<u64> = refused.iter().flat_map(|f| f.seqs.clone()).collect();
        if !refused.is_empty() {
            record_refused(&fenced, &batch.records, &refused, &refused_seqs, &shared).await;
        }
        if !failed.is_empty() {
            match set_aside(&dead, &batch.records, &failed).await {
                Ok(n) => {
                    shared.dead_letters.fetch_add(n, Ordering::Relaxed);
                    metrics::counter!(metric::DEAD_LETTERS).increment(n);
                    for f in &failed {
                        let target = format!("{}/{}", f.collection, f.document);
                        excluded.extend(f.seqs.iter().map(|s| (*s, target.clone())));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %cause_chain(&e), path = %dead.path().display(), consequence = "the batch stays in the spool and is retried", "cannot write the dead-letter file");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        shared
            .seq_anomalies
            .fetch_add(report.seq_anomalies, Ordering::Relaxed);
        // Fenced records (`set_aside_fenced`) are not in `live`.
        let events = live
            .iter()
            .filter(|r| !refused_seqs.contains(&r.seq))
            .map(|r| r.op.events())
            .sum();
        shared.applied.fetch_add(events, Ordering::Relaxed);
        metrics::counter!(metric::OPS_APPLIED).increment(events);
        shared
            .commands
            .fetch_add(report.commands, Ordering::Relaxed);
        metrics::counter!(metric::WRITE_ROUND_TRIPS).increment(report.commands);
        let s = spool.clone();
        let committed = tokio::task::spawn_blocking(move || s.commit(&batch)).await;
        if let Ok(Err(e)) | Err(e) = committed.map_err(std::io::Error::other) {
            tracing::error!(error = %cause_chain(&e), consequence = "applied records will be replayed, harmlessly", "cannot truncate the spool");
        }
    }
}

/// An op of a fenced batch, and whether its resume point holds it.
type Held = (Sequenced, Option<bool>);

/// Sets aside the records of `batch` stamped with an epoch below the fence
/// (a lease this instance lost) and returns the others, with whether the
/// batch has started. Before it sets them aside it asks MongoDB whether
/// their resume points hold them (a reply lost, a restart cut a finish
/// short, a lost lease cut it between two `member_stats` commands): those
/// are returned to be finished, as a started batch is, and the others set
/// aside, each letter saying whether its op is applied there. `None`: MongoDB cannot be read or the fenced file cannot be
/// written, so the batch must stay in the spool.
async fn set_aside_fenced(
    store: &Store,
    file: &DeadLetters,
    batch: &[Sequenced],
    shared: &Shared,
) -> Option<(Vec<Sequenced>, bool)> {
    let (fenced, live): (Vec<Sequenced>, Vec<Sequenced>) = batch
        .iter()
        .cloned()
        .partition(|r| shared.gate.fenced(r.epoch));
    if fenced.is_empty() {
        return Some((live, false));
    }
    let held = if fenced.iter().any(|r| r.epoch > 0) {
        match store.held_at_resume_points(&fenced).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %cause_chain(&e), retry_in_secs = 1, consequence = "the batch stays in the spool", "cannot read back what a fenced batch applied");
                return None;
            }
        }
    } else {
        vec![Some(false); fenced.len()] // provisional: never sent
    };
    // The ops their resume points hold are finished, as a started batch
    // is (a batch cut between two of its `member_stats` commands: those of
    // the first are held, the rest never written); the others set aside.
    let (finish, fenced): (Vec<Held>, Vec<Held>) = if live.is_empty() {
        fenced
            .into_iter()
            .zip(held)
            .partition(|(_, h)| *h == Some(true))
    } else {
        (Vec::new(), fenced.into_iter().zip(held).collect())
    };
    let finish: Vec<Sequenced> = finish.into_iter().map(|(r, _)| r).collect();
    if !finish.is_empty() {
        tracing::warn!(
            ops = finish.len(),
            set_aside = fenced.len(),
            "a batch of a lost lease had reached its resume points; finishing what they hold"
        );
    }
    let done = |live: Vec<Sequenced>| {
        if finish.is_empty() {
            Some((live, false))
        } else {
            Some((finish.clone(), true))
        }
    };
    if fenced.is_empty() {
        return done(live);
    }
    let at = chrono::Utc::now().timestamp_millis();
    let letters: Vec<DeadLetter> = fenced
        .iter()
        .map(|(r, held)| DeadLetter {
            seq: r.seq,
            op: r.op.clone(),
            collection: "fenced".into(),
            document: format!("epoch {}", r.epoch),
            error: fenced_reason(r.epoch, *held),
            at,
        })
        .collect();
    let f = file.clone();
    let n = letters.len() as u64;
    match tokio::task::spawn_blocking(move || f.append(&letters)).await {
        Ok(Ok(())) => {
            shared.fenced.fetch_add(n, Ordering::Relaxed);
            metrics::counter!(metric::OPS_FENCED).increment(n);
            tracing::error!(
                ops = n,
                path = %file.path().display(),
                consequence = "not written: the new holder resumed from what MongoDB held; kept in the file for inspection",
                "increments counted under a lost lease fenced off"
            );
            done(live)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %cause_chain(&e), path = %file.path().display(), consequence = "the batch stays in the spool", "cannot write the fenced-ops file");
            None
        }
        Err(e) => {
            tracing::error!(error = %cause_chain(&e), "fenced-ops writer task failed");
            None
        }
    }
}

/// Why an op stamped with `epoch` was set aside, and whether MongoDB holds
/// it at its resume point (`held`, see `Store::held_at_resume_points`).
fn fenced_reason(epoch: u64, held: Option<bool>) -> String {
    if epoch == 0 {
        return "counted before MongoDB could say who holds the lease; another instance held it; not applied".into();
    }
    let applied = match held {
        Some(true) => "applied to its totals (member_stats) before the lease was lost; its other documents may lack it",
        Some(false) => "never written",
        None => "not known whether applied (a newer holder wrote its totals since)",
    };
    format!("counted under lease epoch {epoch}, lost since; {applied}")
}

/// Records in `fenced.log` the ops of `batch` (`seqs`) that the store
/// refused as fenced (`refused`: a document a newer lease epoch wrote), and
/// counts them as fenced. They were not applied where refused; they may
/// have applied to other documents (a batch is several commands).
async fn record_refused(
    file: &DeadLetters,
    batch: &[Sequenced],
    refused: &[FailedWrite],
    seqs: &HashSet<u64>,
    shared: &Shared,
) {
    let at = chrono::Utc::now().timestamp_millis();
    let letters: Vec<DeadLetter> = batch
        .iter()
        .filter(|r| seqs.contains(&r.seq))
        .map(|r| {
            let on: Vec<String> = refused
                .iter()
                .filter(|f| f.seqs.contains(&r.seq))
                .map(|f| format!("{}/{}", f.collection, f.document))
                .collect();
            DeadLetter {
                seq: r.seq,
                op: r.op.clone(),
                collection: "fenced".into(),
                document: format!("epoch {}", r.epoch),
                error: format!(
                    "refused by MongoDB as fenced on {} (written at a newer lease epoch); applied to the other documents of its batch, if any",
                    on.join(", ")
                ),
                at,
            }
        })
        .collect();
    let n = letters.len() as u64;
    shared.fenced.fetch_add(n, Ordering::Relaxed);
    metrics::counter!(metric::OPS_FENCED).increment(n);
    let f = file.clone();
    let written = tokio::task::spawn_blocking(move || f.append(&letters)).await;
    let error = match written {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(cause_chain(&e)),
        Err(e) => Some(cause_chain(&e)),
    };
    tracing::error!(
        ops = n,
        path = %file.path().display(),
        not_recorded = error.as_deref(),
        consequence = "not applied where refused: a newer lease holder wrote those documents",
        "increments refused by MongoDB as fenced"
    );
}
