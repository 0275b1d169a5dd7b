//! The upsert statements of a batch: one per document, guarded by sequence
//! numbers so that a replay is refused as a duplicate key.

use std::collections::{BTreeMap, HashSet};

use mongodb::bson::{doc, rawdoc, Bson, DateTime, Document, RawArrayBuf, RawDocumentBuf};

use super::schema::{
    member_id, segment_id, seq_bson, to_i64, AUDIT_LOG, MEMBER_DAYS, MEMBER_MONTHS, MEMBER_STATS,
    MEMBER_WEEKS, VOICE_SEGMENTS, VOICE_SESSIONS, WRITTEN,
};
use super::{audit, periods, rollups};
use crate::core::calendar::day_key;
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

    /// The guild, user and resume point every statement sets.
    fn identity(&self) -> [(&'static str, i64); 3] {
        let key = self.ops.first().map(|o| o.op.member());
        [
            ("guild_id", key.map_or(0, |k| to_i64(k.guild))),
            ("user_id", key.map_or(0, |k| to_i64(k.user))),
            ("seq", seq_bson(self.last_seq())),
        ]
    }

    /// The upsert statement for these ops, as the bytes the `update`
    /// command carries: built straight into BSON (a flush of 100,000
    /// credits makes 200,000 of them; no `Document` tree to build, encode
    /// and drop).
    pub(super) fn statement(&self) -> RawDocumentBuf {
        let Some(first) = self.ops.first() else {
            return RawDocumentBuf::new();
        };
        // `$not: {$gte}` also matches a document that has no `seq` yet.
        let mut q = rawdoc! { "_id": self.id.as_str(), "seq": { "$not": { "$gte": seq_bson(self.first_seq()) } } };
        let epoch = fence(first.epoch, &mut q);
        let mut set = RawDocumentBuf::new();
        for (k, v) in self.identity() {
            set.append(k, v);
        }
        let (mut update, mut max) = (RawDocumentBuf::new(), RawDocumentBuf::new());
        match self.coll {
            MEMBER_STATS => {
                let steady = if self.rolled {
                    None
                } else {
                    periods::fast_keys(&self.ops)
                };
                let Some(steady) = steady else {
                    return self.rolling(q, epoch);
                };
                let (sum, credited_until, msg_max) = periods::totals(&self.ops);
                let mut inc = vec![
                    ("voice_secs", sum.voice_secs()),
                    ("voice_cam_on_secs", sum.cam_on_secs),
                    ("voice_cam_off_secs", sum.cam_off_secs),
                    ("messages", sum.messages),
                ];
                if let Some((keys, t)) = steady {
                    periods::steady(&keys, &t, &mut q, &mut inc);
                }
                update.append("$inc", periods::nonzero(inc));
                // The resume point changes in the same statement as the
                // totals it guards: a restart that lost its spool resumes
                // exactly where the stored total ends, never before it.
                if let Some(until) = credited_until {
                    max.append("credited_until", DateTime::from_millis(until));
                }
                // Likewise the highest message id the totals hold (what a
                // takeover at an expiry reads: `Store::messages_written`).
                if let Some(id) = msg_max {
                    max.append("msg_max", to_i64(id));
                }
            }
            MEMBER_DAYS | MEMBER_WEEKS | MEMBER_MONTHS => self.rollup(&mut set, &mut update),
            VOICE_SEGMENTS => self.segment(&mut set, &mut update, &mut max),
            AUDIT_LOG => {
                // A correction's entry: written once, never changed.
                if let Some(entry) = audit::correction_document(&first.op) {
                    update.append("$setOnInsert", raw(&entry));
                }
            }
            _ => {
                // VOICE_SESSIONS: the last checkpoint wins.
                if let Some(Op::Checkpoint { open, .. }) = self.ops.last().map(|o| &o.op) {
                    set.append("open", open.is_some());
                    set.append("updated_at", DateTime::now());
                    if let Some(o) = open {
                        set.append("channel_id", to_i64(o.channel));
                        set.append("camera", o.camera);
                        set.append("segment_start", DateTime::from_millis(o.segment_start));
                    }
                }
            }
        }
        // Fencing raises the document's epoch in the same statement.
        if let Some(e) = epoch {
            max.append("epoch", e);
        }
        if !max.is_empty() {
            update.append("$max", max);
        }
        update.append("$set", set);
        rawdoc! { "q": q, "u": update, "upsert": true }
    }

    /// The rolling shape of a `member_stats` statement: one pipeline stage
    /// (`store/periods.rs`), and the epoch raised after it when fenced.
    fn rolling(&self, q: RawDocumentBuf, epoch: Option<i64>) -> RawDocumentBuf {
        let set: Document = self
            .identity()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Bson::Int64(v)))
            .collect();
        let mut stages = RawArrayBuf::new();
        for stage in periods::stats_pipeline(&self.ops, &set) {
            stages.push(raw(&stage));
        }
        if let Some(e) = epoch {
            stages.push(rawdoc! { "$set": { "epoch": { "$max": ["$epoch", { "$literal": e }] } } });
        }
        rawdoc! { "q": q, "u": stages, "upsert": true }
    }

    /// A segment's statement: its seconds, in all and per local day
    /// (`days.YYYY-MM-DD`: what `/ud`, the chart and the streaks read, the
    /// days the ops carry), its end, and where it is.
    fn segment(
        &self,
        set: &mut RawDocumentBuf,
        update: &mut RawDocumentBuf,
        max: &mut RawDocumentBuf,
    ) {
        let (mut secs, mut end, mut at) = (0_i64, i64::MIN, None);
        let mut days: Vec<(String, i64)> = Vec::new();
        for o in &self.ops {
            for (date, s) in o.op.voice_days() {
                let field = ["days.", &day_key(date)].concat();
                match days.iter_mut().find(|(f, _)| *f == field) {
                    Some((_, sum)) => *sum += s,
                    None => days.push((field, s)),
                }
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
                at = Some((*channel, *camera, *segment_start));
            }
        }
        let mut inc = RawDocumentBuf::new();
        for (field, s) in days {
            inc.append(field, s);
        }
        inc.append("secs", secs);
        update.append("$inc", inc);
        max.append("end", DateTime::from_millis(end));
        if let Some((channel, camera, start)) = at {
            set.append("channel_id", to_i64(channel));
            set.append("camera", camera);
            set.append("start", DateTime::from_millis(start));
        }
    }
}

/// `d` as the bytes a command carries. A statement's documents hold
/// strings, numbers, dates and booleans only, which always encode.
pub(super) fn raw(d: &Document) -> RawDocumentBuf {
    RawDocumentBuf::from_document(d).expect("a document of strings, numbers and dates encodes")
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
    pub(super) fn statement_guarded(&self, q: Document, mark: Mark<'_>) -> RawDocumentBuf {
        let mut statement = DocOps {
            rolled: true,
            ..self.clone()
        }
        .statement()
        .to_document()
        .expect("a statement built here reads back");
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
        raw(&statement)
    }
}

impl DocOps<'_> {
    /// A day's or a period's rollup: each op's share of it.
    fn rollup(&self, set: &mut RawDocumentBuf, update: &mut RawDocumentBuf) {
        let key = rollups::key_of(&self.id);
        let field = match self.coll {
            MEMBER_DAYS => "day",
            MEMBER_WEEKS => "week",
            _ => "month",
        };
        set.append(field, key);
        let mut sum = Totals::default();
        for o in &self.ops {
            let t = rollups::share(&o.op, key);
            sum.cam_on_secs += t.cam_on_secs;
            sum.cam_off_secs += t.cam_off_secs;
            sum.messages += t.messages;
        }
        let mut inc = periods::nonzero([
            ("messages", sum.messages),
            ("voice_cam_on_secs", sum.cam_on_secs),
            ("voice_cam_off_secs", sum.cam_off_secs),
            ("voice_secs", sum.voice_secs()),
        ]);
        if self.coll == MEMBER_DAYS {
            // What of the day's messages this version wrote, and so holds
            // in `member_stats`' periods as well: the carry of an earlier
            // version's days leaves it out (`store/periods.rs`).
            inc.append("messages_in_periods", sum.messages);
        }
        update.append("$inc", inc);
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
/// statement (a duplicate key, which `apply` tells from a replay); the
/// statement raises the document's epoch to the returned one. Epoch 0 (no
/// lease) is not fenced.
fn fence(epoch: u64, q: &mut RawDocumentBuf) -> Option<i64> {
    (epoch != 0).then(|| {
        let epoch = to_i64(epoch);
        q.append("epoch", rawdoc! { "$not": { "$gt": epoch } });
        epoch
    })
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

#[cfg(test)]
mod tests;
