//! The upsert statements of a batch: one per document, guarded by sequence
//! numbers so that a replay is refused as a duplicate key.

use std::collections::{BTreeMap, HashSet};

use mongodb::bson::{doc, Bson, DateTime, Document};

use super::schema::{
    member_id, segment_id, seq_bson, to_i64, AUDIT_LOG, MEMBER_DAYS, MEMBER_MONTHS, MEMBER_STATS,
    MEMBER_WEEKS, VOICE_SEGMENTS, VOICE_SESSIONS, WRITTEN,
};
use super::{audit, periods, rollups};
use crate::core::stats::Totals;
use crate::core::whole_secs;
use crate::durable::op::{Op, Sequenced};

/// One document's share of a batch: the ops that touch it, in seq order.
/// They become one statement guarded by `seq < first op's seq`, which sets
/// `seq` to the last op's. A document's ops are always applied in seq order
/// and a statement applies all of its ops or none, so the applied ops of a
/// document are always a prefix, and `seq` says exactly where it ends.
#[derive(Clone, Debug)]
pub(super) struct DocOps<'a> {
    pub(super) coll: &'static str,
    pub(super) id: String,
    pub(super) ops: Vec<&'a Sequenced>,
    /// `member_stats` only: send the rolling shape (after the steady one
    /// missed: the stored periods are at other keys; `store/periods.rs`).
    pub(super) rolled: bool,
}

impl DocOps<'_> {
    pub(super) fn first_seq(&self) -> u64 {
        self.ops.first().map_or(0, |o| o.seq)
    }

    pub(super) fn last_seq(&self) -> u64 {
        self.ops.last().map_or(0, |o| o.seq)
    }

    /// The totals' part of a `member_stats` statement in the steady shape
    /// (`store/periods.rs`): the increments, and the resume point and
    /// highest message id they hold.
    fn totals(&self, update: &mut Document) {
        let (sum, credited_until, msg_max) = periods::totals(&self.ops);
        update.insert(
            "$inc",
            periods::nonzero([
                ("voice_secs", sum.voice_secs()),
                ("voice_cam_on_secs", sum.cam_on_secs),
                ("voice_cam_off_secs", sum.cam_off_secs),
                ("messages", sum.messages),
            ]),
        );
        // The resume point changes in the same statement as the
        // totals it guards: a restart that lost its spool resumes
        // exactly where the stored total ends, never before it.
        let mut max = Document::new();
        if let Some(until) = credited_until {
            max.insert("credited_until", DateTime::from_millis(until));
        }
        // Likewise the highest message id the totals hold (what a
        // takeover at an expiry reads: `Store::messages_written`).
        if let Some(id) = msg_max {
            max.insert("msg_max", to_i64(id));
        }
        if !max.is_empty() {
            update.insert("$max", max);
        }
    }

    /// The upsert statement for these ops.
    pub(super) fn statement(&self) -> Document {
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
        // `$not: {$gte}` also matches a document that has no `seq` yet.
        let mut q =
            doc! { "_id": &self.id, "seq": { "$not": { "$gte": seq_bson(self.first_seq()) } } };
        match self.coll {
            MEMBER_STATS => {
                let steady = if self.rolled {
                    None
                } else {
                    periods::fast_keys(&self.ops)
                };
                let Some(steady) = steady else {
                    // The rolling shape: one pipeline stage.
                    let mut u = Bson::Array(
                        periods::stats_pipeline(&self.ops, &set)
                            .into_iter()
                            .map(Bson::Document)
                            .collect(),
                    );
                    fence(first.epoch, &mut q, &mut u);
                    return doc! { "q": q, "u": u, "upsert": true };
                };
                self.totals(&mut update);
                if let (Some((keys, t)), Ok(inc)) = (steady, update.get_document_mut("$inc")) {
                    periods::steady(&keys, &t, &mut q, inc);
                }
            }
            MEMBER_DAYS | MEMBER_WEEKS | MEMBER_MONTHS => self.rollup(&mut set, &mut update),
            VOICE_SEGMENTS => {
                let (mut secs, mut end) = (0_i64, i64::MIN);
                // The seconds per local day the ops carry (`days.YYYY-MM-DD`):
                // what `/ud`, the chart and the streaks read, the same days
                // the rollups got.
                let mut inc = Document::new();
                for o in &self.ops {
                    for (date, s) in o.op.voice_days() {
                        let field = format!("days.{}", date.format("%Y-%m-%d"));
                        let sum = inc.get_i64(&field).unwrap_or(0) + s;
                        inc.insert(field, sum);
                    }
                    if let Op::Voice {
                        channel,
                        camera,
                        segment_start,
                        from,
                        to,
                        ..
                    } = &o.op
                    {
                        secs += whole_secs(*from, *to);
                        end = end.max(*to);
                        set.insert("channel_id", to_i64(*channel));
                        set.insert("camera", *camera);
                        set.insert("start", DateTime::from_millis(*segment_start));
                    }
                }
                inc.insert("secs", secs);
                update.insert("$inc", inc);
                update.insert("$max", doc! { "end": DateTime::from_millis(end) });
            }
            AUDIT_LOG => {
                // A correction's entry: written once, never changed.
                if let Some(entry) = audit::correction_document(&first.op) {
                    update.insert("$setOnInsert", entry);
                }
            }
            _ => {
                // VOICE_SESSIONS: the last checkpoint wins.
                if let Some(Op::Checkpoint { open, .. }) = self.ops.last().map(|o| &o.op) {
                    set.insert("open", open.is_some());
                    set.insert("updated_at", DateTime::now());
                    if let Some(o) = open {
                        set.insert("channel_id", to_i64(o.channel));
                        set.insert("camera", o.camera);
                        set.insert("segment_start", DateTime::from_millis(o.segment_start));
                    }
                }
            }
        }
        update.insert("$set", set);
        let mut u = Bson::Document(update);
        fence(first.epoch, &mut q, &mut u);
        doc! { "q": q, "u": u, "upsert": true }
    }
}

/// How a statement guarded by something other than its sequence number
/// (a dead letter's retry, an operator's correction) records that it applied.
pub(super) enum Mark<'a> {
    /// Adds the value to the array field (the guard asks it is absent).
    Add(&'a str, Bson),
    /// Appends the value to the array field, keeping its last `n`.
    Remember(&'a str, Bson, i32),
    None,
}

impl DocOps<'_> {
    /// This statement guarded by `q` instead of its sequence number: the
    /// document's own `seq` stays as it is, and `mark` records it. A
    /// `member_stats` statement takes the rolling shape (the steady one's
    /// filter would ask for period keys, which `q` replaces).
    #[allow(clippy::many_single_char_names)]
    pub(super) fn statement_guarded(&self, q: Document, mark: Mark<'_>) -> Document {
        let mut statement = DocOps {
            rolled: true,
            ..self.clone()
        }
        .statement();
        match statement.get_mut("u") {
            Some(Bson::Document(u)) => {
                if let Ok(set) = u.get_document_mut("$set") {
                    set.remove("seq");
                }
                let (op, field, value) = match mark {
                    Mark::Add(f, v) => ("$addToSet", f, v),
                    Mark::Remember(f, v, n) => {
                        ("$push", f, doc! { "$each": [v], "$slice": -n }.into())
                    }
                    Mark::None => ("", "", Bson::Null),
                };
                if !op.is_empty() {
                    let mut d = Document::new();
                    d.insert(field, value);
                    u.insert(op, d);
                }
            }
            Some(Bson::Array(stages)) => {
                for stage in stages.iter_mut() {
                    if let Some(set) = stage
                        .as_document_mut()
                        .and_then(|s| s.get_document_mut("$set").ok())
                    {
                        set.remove("seq");
                    }
                }
                let appended = |f: &str, v: Bson| -> Bson {
                    doc! { "$concatArrays": [{ "$ifNull": [format!("${f}"), []] }, [{ "$literal": v }]] }
                        .into()
                };
                let set = match mark {
                    Mark::Add(f, v) => Some((f, appended(f, v))),
                    Mark::Remember(f, v, n) => {
                        Some((f, doc! { "$slice": [appended(f, v), -n] }.into()))
                    }
                    Mark::None => None,
                };
                if let Some((f, v)) = set {
                    let mut d = Document::new();
                    d.insert(f, v);
                    stages.push(doc! { "$set": d }.into());
                }
            }
            _ => {}
        }
        statement.insert("q", q);
        statement
    }
}

impl DocOps<'_> {
    /// A day's or a period's rollup: each op's share of it.
    fn rollup(&self, set: &mut Document, update: &mut Document) {
        let key = rollups::key_of(&self.id);
        let field = match self.coll {
            MEMBER_DAYS => "day",
            MEMBER_WEEKS => "week",
            _ => "month",
        };
        set.insert(field, key);
        let mut sum = Totals::default();
        for o in &self.ops {
            let t = rollups::share(&o.op, key);
            sum.cam_on_secs += t.cam_on_secs;
            sum.cam_off_secs += t.cam_off_secs;
            sum.messages += t.messages;
        }
        update.insert(
            "$inc",
            periods::nonzero([
                ("messages", sum.messages),
                ("voice_cam_on_secs", sum.cam_on_secs),
                ("voice_cam_off_secs", sum.cam_off_secs),
                ("voice_secs", sum.voice_secs()),
            ]),
        );
        if self.coll == MEMBER_DAYS {
            // What of the day's messages this version wrote, and so holds
            // in `member_stats`' periods as well: the carry of an earlier
            // version's days leaves it out (`store/periods.rs`).
            if let Ok(inc) = update.get_document_mut("$inc") {
                inc.insert("messages_in_periods", sum.messages);
            }
        }
    }

    /// Whether a document at lease epoch `doc_epoch` refuses these ops
    /// (written by a newer holder): they are dropped, loudly.
    pub(super) fn fenced_by(&self, doc_epoch: u64) -> bool {
        let epoch = self.ops.first().map_or(0, |o| o.epoch);
        let fenced = epoch > 0 && doc_epoch > epoch;
        if fenced {
            tracing::error!(collection = self.coll, document = %self.id, epoch, document_epoch = doc_epoch, ops = self.ops.len(), consequence = "not applied (the newer lease holder counts from its takeover)", "fenced: ops of an older lease epoch refused");
        }
        fenced
    }
}

/// Fencing (epoch > 0): a document a newer lease epoch wrote refuses the
/// statement (a duplicate key, which `apply` tells from a replay), and the
/// statement raises the document's epoch. Epoch 0 (no lease) is not fenced.
fn fence(epoch: u64, q: &mut Document, update: &mut Bson) {
    if epoch == 0 {
        return;
    }
    let epoch = to_i64(epoch);
    q.insert("epoch", doc! { "$not": { "$gt": epoch } });
    match update {
        Bson::Array(stages) => stages.push(Bson::Document(
            doc! { "$set": { "epoch": { "$max": ["$epoch", { "$literal": epoch }] } } },
        )),
        Bson::Document(update) => {
            if let Ok(max) = update.get_document_mut("$max") {
                max.insert("epoch", epoch);
            } else {
                update.insert("$max", doc! { "epoch": epoch });
            }
        }
        _ => {}
    }
}

/// Groups a batch per collection and document, keeping seq order.
/// `excluded` holds `(seq, "collection/_id")` of ops set aside as dead
/// letters: a replay of the spool must not apply them through the normal
/// path (`dead-letters --retry` applies them, once).
pub(super) fn group<'a>(
    batch: &'a [Sequenced],
    excluded: &HashSet<(u64, String)>,
) -> Vec<(&'static str, Vec<DocOps<'a>>)> {
    let mut by_doc: BTreeMap<(&'static str, String), Vec<&Sequenced>> = BTreeMap::new();
    for rec in batch {
        let key = rec.op.member();
        let mut targets: Vec<(&'static str, String)> = match &rec.op {
            Op::Voice { segment_start, .. } => vec![
                (MEMBER_STATS, member_id(key)),
                (VOICE_SEGMENTS, segment_id(key, *segment_start)),
            ],
            Op::Message { .. } => vec![(MEMBER_STATS, member_id(key))],
            Op::Checkpoint { .. } => vec![(VOICE_SESSIONS, member_id(key))],
            Op::Adjust { id, .. } => vec![
                (MEMBER_STATS, member_id(key)),
                (AUDIT_LOG, audit::correction_id(key.guild, *id)),
            ],
        };
        targets.extend(rollups::targets(&rec.op));
        for t in targets {
            if !excluded.is_empty() && excluded.contains(&(rec.seq, format!("{}/{}", t.0, t.1))) {
                continue;
            }
            by_doc.entry(t).or_default().push(rec);
        }
    }
    let mut out: Vec<(&'static str, Vec<DocOps<'_>>)> =
        WRITTEN.into_iter().map(|c| (c, Vec::new())).collect();
    for ((coll, id), mut ops) in by_doc {
        ops.sort_by_key(|o| o.seq);
        if let Some((_, docs)) = out.iter_mut().find(|(c, _)| *c == coll) {
            docs.push(DocOps {
                coll,
                id,
                ops,
                rolled: false,
            });
        }
    }
    out.retain(|(_, docs)| !docs.is_empty());
    out
}
