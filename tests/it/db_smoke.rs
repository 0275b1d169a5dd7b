//! Pins down the server semantics the writer relies on, against the real test
//! server (`support::db`): conditional upserts keyed by `{_id, seq: {$lt: N}}`
//! sent as raw `update` commands, the duplicate-key "already applied" signal,
//! what one multi-statement `update` does when a statement in the middle hits
//! it, and `find` with sort plus a compound index.
//!
//! The test server (FerretDB v2 on `DocumentDB`) behaves as MongoDB documents.
//! Where the no-root fallback, FerretDB v1, differs, its side is asserted too,
//! chosen by `TestDb::is_ferretdb_v1` (observed on FerretDB v1.24.2, `SQLite`);
//! the MongoDB side is MongoDB's documented behaviour for `ordered: false`.

use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use futures::TryStreamExt;

use crate::support::db::{fresh_db, TestDb};

const COLL: &str = "totals";

fn ts(secs: i64) -> DateTime {
    DateTime::from_millis(secs * 1000)
}

/// One statement exactly as the writer builds it.
fn stmt(id: &str, seq: i64, a: i64, start: DateTime, end: DateTime) -> Document {
    doc! {
        "q": { "_id": id, "seq": { "$lt": seq } },
        "u": {
            "$inc": { "a": a },
            "$set": { "seq": seq, "guild_id": 1i64 },
            "$max": { "end": end },
            "$setOnInsert": { "start": start },
        },
        "upsert": true,
    }
}

/// A statement with default times (start = seq*100 s, end = seq*100+50 s).
fn simple(id: &str, seq: i64, a: i64) -> Document {
    stmt(id, seq, a, ts(seq * 100), ts(seq * 100 + 50))
}

/// Sends one `update` command, `ordered: false`, and returns the raw reply.
async fn apply(t: &TestDb, stmts: Vec<Document>) -> Document {
    t.db()
        .run_command(doc! { "update": COLL, "updates": stmts, "ordered": false })
        .await
        .expect("update command itself must succeed (write errors are in the reply)")
}

fn coll(t: &TestDb) -> Collection<Document> {
    t.db().collection(COLL)
}

async fn get(t: &TestDb, id: &str) -> Option<Document> {
    coll(t)
        .find_one(doc! { "_id": id })
        .await
        .expect("find_one")
}

async fn ids(t: &TestDb) -> Vec<String> {
    let docs: Vec<Document> = coll(t)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("cursor");
    docs.iter()
        .map(|d| d.get_str("_id").unwrap().to_string())
        .collect()
}

/// A numeric reply field as i64 (servers differ in int32/int64/double).
fn num(reply: &Document, key: &str) -> Option<i64> {
    match reply.get(key)? {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        #[allow(clippy::cast_possible_truncation)] // whole numbers stored as doubles
        Bson::Double(v) => Some(v.round() as i64),
        other => panic!("{key} has unexpected type: {other:?} in {reply}"),
    }
}

/// `writeErrors` as (index, code) pairs; empty when absent.
fn write_errors(reply: &Document) -> Vec<(i64, i64)> {
    let Ok(errs) = reply.get_array("writeErrors") else {
        return vec![];
    };
    errs.iter()
        .map(|e| {
            let e = e.as_document().expect("writeError is a document");
            (
                num(e, "index").expect("index"),
                num(e, "code").expect("code"),
            )
        })
        .collect()
}

/// `upserted` as (index, _id) pairs; empty when absent.
fn upserted(reply: &Document) -> Vec<(i64, String)> {
    let Ok(ups) = reply.get_array("upserted") else {
        return vec![];
    };
    ups.iter()
        .map(|u| {
            let u = u.as_document().expect("upserted entry is a document");
            (
                num(u, "index").expect("index"),
                u.get_str("_id").expect("_id").to_string(),
            )
        })
        .collect()
}

fn assert_ok(reply: &Document) {
    assert_eq!(num(reply, "ok"), Some(1), "reply: {reply}");
}

#[tokio::test]
async fn first_apply_inserts_all_fields() {
    let t = fresh_db().await;
    let reply = apply(&t, vec![stmt("g:u", 1, 5, ts(1000), ts(1060))]).await;
    assert_ok(&reply);
    assert_eq!(write_errors(&reply), vec![], "reply: {reply}");
    assert_eq!(num(&reply, "n"), Some(1), "reply: {reply}");
    assert_eq!(num(&reply, "nModified"), Some(0), "reply: {reply}");
    assert_eq!(
        upserted(&reply),
        vec![(0, "g:u".to_string())],
        "reply: {reply}"
    );

    let d = get(&t, "g:u").await.expect("inserted");
    // Only `_id` comes from the filter (`seq: {$lt}` is not an equality), the
    // rest from the update operators; types are preserved.
    let expected = doc! {
        "_id": "g:u", "a": 5i64, "seq": 1i64, "guild_id": 1i64,
        "end": ts(1060), "start": ts(1000),
    };
    // Field order is not part of the contract.
    assert_eq!(sorted(d.clone()), sorted(expected));
    assert!(matches!(d.get("guild_id"), Some(Bson::Int64(1))), "{d}");
    assert!(matches!(d.get("end"), Some(Bson::DateTime(_))), "{d}");
}

fn sorted(d: Document) -> Document {
    let mut v: Vec<(String, Bson)> = d.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().collect()
}

#[tokio::test]
async fn replay_is_duplicate_key_and_changes_nothing() {
    let t = fresh_db().await;
    apply(&t, vec![simple("g:u", 3, 5)]).await;
    let before = get(&t, "g:u").await.unwrap();

    // Same N, and a lower N: the filter matches nothing, the upsert's insert
    // collides on _id.
    for seq in [3, 2] {
        let reply = apply(&t, vec![stmt("g:u", seq, 5, ts(0), ts(99_999))]).await;
        assert_ok(&reply);
        assert_eq!(
            write_errors(&reply),
            vec![(0, 11000)],
            "seq {seq}, reply: {reply}"
        );
        assert_eq!(upserted(&reply), vec![], "reply: {reply}");
        // MongoDB reports n = nModified = 0; FerretDB v1 omits both on any error.
        if !t.is_ferretdb_v1().await {
            assert_eq!(num(&reply, "n"), Some(0), "reply: {reply}");
            assert_eq!(num(&reply, "nModified"), Some(0), "reply: {reply}");
        }
        assert_eq!(
            get(&t, "g:u").await.unwrap(),
            before,
            "seq {seq} must not apply"
        );
    }
    assert_eq!(ids(&t).await, vec!["g:u"]);
}

#[tokio::test]
async fn higher_seq_applies_and_max_and_set_on_insert_behave() {
    let t = fresh_db().await;
    apply(&t, vec![stmt("g:u", 1, 5, ts(1000), ts(2000))]).await;

    // Higher N with an earlier end: $inc and $set apply, $max keeps the later
    // end, $setOnInsert does nothing on an update.
    let reply = apply(&t, vec![stmt("g:u", 2, 7, ts(1), ts(1500))]).await;
    assert_ok(&reply);
    assert_eq!(write_errors(&reply), vec![], "reply: {reply}");
    assert_eq!(num(&reply, "n"), Some(1), "reply: {reply}");
    assert_eq!(num(&reply, "nModified"), Some(1), "reply: {reply}");
    assert_eq!(upserted(&reply), vec![], "reply: {reply}");
    let d = get(&t, "g:u").await.unwrap();
    assert_eq!(d.get_i64("a").unwrap(), 12, "{d}");
    assert_eq!(d.get_i64("seq").unwrap(), 2, "{d}");
    assert_eq!(d.get_datetime("end").unwrap(), &ts(2000), "{d}");
    assert_eq!(d.get_datetime("start").unwrap(), &ts(1000), "{d}");

    // A later end moves it forward.
    apply(&t, vec![stmt("g:u", 5, 1, ts(1), ts(3000))]).await;
    let d = get(&t, "g:u").await.unwrap();
    assert_eq!(d.get_i64("a").unwrap(), 13, "{d}");
    assert_eq!(d.get_i64("seq").unwrap(), 5, "{d}");
    assert_eq!(d.get_datetime("end").unwrap(), &ts(3000), "{d}");
    assert_eq!(d.get_datetime("start").unwrap(), &ts(1000), "{d}");
}

/// One `update` command, `ordered: false`, three upserts where the middle one
/// is a replay (duplicate key):
///
/// * **FerretDB v1.24.2 ignores `ordered`** (its `MsgUpdate` has
///   `_ = params.Ordered`, FerretDB issue #2612) and runs the statements one by
///   one, each committed on its own: statements *before* the failing one are
///   applied, the failing one and **everything after it are not executed**.
///   The reply is only `{ok: 1, writeErrors: [{index: 0, code: 11000,
///   errmsg: "E11000 duplicate key error collection: <db>.<coll>"}]}`: the
///   `index` is **always 0** whatever statement failed, and `n`, `nModified`
///   and `upserted` are **absent**, even though earlier statements did apply.
///   So the reply cannot tell which statements applied; the writer must
///   treat a dup-key reply to a multi-statement command as "unknown" and
///   re-send the statements (each is idempotent), e.g. one per command.
/// * MongoDB honours `ordered: false`: statements after the error still run;
///   `writeErrors: [{index: 1, code: 11000}]`, `n: 2`, `nModified: 0`,
///   `upserted: [{index: 0, _id: "g:a"}, {index: 2, _id: "g:c"}]`.
#[tokio::test]
async fn multi_statement_with_duplicate_key_in_the_middle() {
    let t = fresh_db().await;
    apply(&t, vec![simple("g:b", 1, 5)]).await;
    let b_before = get(&t, "g:b").await.unwrap();

    let reply = apply(
        &t,
        vec![
            simple("g:a", 1, 1),
            simple("g:b", 1, 5),
            simple("g:c", 1, 1),
        ],
    )
    .await;
    assert_ok(&reply);
    assert_eq!(
        get(&t, "g:b").await.unwrap(),
        b_before,
        "the replay must not apply"
    );
    assert!(
        get(&t, "g:a").await.is_some(),
        "statements before the error are applied"
    );

    if t.is_ferretdb_v1().await {
        assert_eq!(
            ids(&t).await,
            vec!["g:a", "g:b"],
            "FerretDB v1 stops at the first error"
        );
        let mut shape = reply.clone();
        shape.remove("writeErrors");
        assert_eq!(
            shape,
            doc! { "ok": 1.0 },
            "no n/nModified/upserted: {reply}"
        );
        assert_eq!(
            write_errors(&reply),
            vec![(0, 11000)],
            "index is always 0: {reply}"
        );
    } else {
        assert_eq!(
            ids(&t).await,
            vec!["g:a", "g:b", "g:c"],
            "ordered:false runs everything"
        );
        assert_eq!(write_errors(&reply), vec![(1, 11000)], "reply: {reply}");
        assert_eq!(num(&reply, "n"), Some(2), "reply: {reply}");
        assert_eq!(num(&reply, "nModified"), Some(0), "reply: {reply}");
        assert_eq!(
            upserted(&reply),
            vec![(0, "g:a".to_string()), (2, "g:c".to_string())],
            "reply: {reply}"
        );
    }
}

/// Without errors a multi-statement command applies everything and reports
/// `n` (matched + upserted) and `nModified` on both servers. But FerretDB's
/// `upserted[].index` counts *upserts* (0, 1, ...), not statement positions as
/// MongoDB's does: do not map it back to statements; use `_id`.
#[tokio::test]
async fn multi_statement_without_errors_and_upserted_index() {
    let t = fresh_db().await;
    apply(&t, vec![simple("g:b", 1, 5)]).await;

    // Statement 0 updates g:b, statement 1 inserts g:c, statement 2 inserts g:d.
    let reply = apply(
        &t,
        vec![
            simple("g:b", 2, 5),
            simple("g:c", 1, 1),
            simple("g:d", 1, 1),
        ],
    )
    .await;
    assert_ok(&reply);
    assert_eq!(write_errors(&reply), vec![], "reply: {reply}");
    assert_eq!(num(&reply, "n"), Some(3), "reply: {reply}");
    assert_eq!(num(&reply, "nModified"), Some(1), "reply: {reply}");
    let expected = if t.is_ferretdb_v1().await {
        [0, 1]
    } else {
        [1, 2]
    };
    assert_eq!(
        upserted(&reply),
        vec![
            (expected[0], "g:c".to_string()),
            (expected[1], "g:d".to_string())
        ],
        "reply: {reply}"
    );
    assert_eq!(ids(&t).await, vec!["g:b", "g:c", "g:d"]);
    assert_eq!(get(&t, "g:b").await.unwrap().get_i64("a").unwrap(), 10);
}

#[tokio::test]
async fn find_with_sort_and_compound_index() {
    let t = fresh_db().await;
    let c = coll(&t);
    let name = c
        .create_index(
            IndexModel::builder()
                .keys(doc! { "guild_id": 1, "day": -1 })
                .options(
                    IndexOptions::builder()
                        .name("guild_day".to_string())
                        .build(),
                )
                .build(),
        )
        .await
        .expect("create compound index")
        .index_name;
    assert_eq!(name, "guild_day");
    // Creating the same index again is a no-op.
    c.create_index(
        IndexModel::builder()
            .keys(doc! { "guild_id": 1, "day": -1 })
            .options(
                IndexOptions::builder()
                    .name("guild_day".to_string())
                    .build(),
            )
            .build(),
    )
    .await
    .expect("re-create same index");
    let names = c.list_index_names().await.expect("list indexes");
    assert!(names.contains(&"guild_day".to_string()), "{names:?}");

    for (g, day, a) in [
        (1i64, 3i64, 30i64),
        (2, 1, 10),
        (1, 1, 11),
        (1, 2, 20),
        (2, 2, 21),
    ] {
        c.insert_one(doc! { "_id": format!("{g}:{day}"), "guild_id": g, "day": day, "a": a })
            .await
            .expect("insert");
    }
    let docs: Vec<Document> = c
        .find(doc! { "guild_id": 1i64 })
        .sort(doc! { "day": -1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("cursor");
    let days: Vec<i64> = docs.iter().map(|d| d.get_i64("day").unwrap()).collect();
    assert_eq!(days, vec![3, 2, 1]);

    let docs: Vec<Document> = c
        .find(doc! {})
        .sort(doc! { "guild_id": 1, "day": -1 })
        .limit(3)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("cursor");
    let got: Vec<String> = docs
        .iter()
        .map(|d| d.get_str("_id").unwrap().to_string())
        .collect();
    assert_eq!(got, vec!["1:3", "1:2", "1:1"]);
}
