//! One bad document cannot stop everyone: its ops go to the dead-letter
//! file, the writer moves on, and `study-tracker dead-letters --retry`
//! applies them once the cause is fixed, exactly once.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use study_tracker::app::now_millis;
use study_tracker::core::MemberKey;
use study_tracker::durable::dead_letters::DeadLetters;

use crate::support::app::{spawn_app, test_settings};
use crate::support::bot::run_cli;
use crate::support::db::fresh_db;

const POISON: MemberKey = MemberKey {
    guild: 1_400_000_000_000_000_001,
    user: 1_400_000_000_000_000_002,
};
const OTHER: MemberKey = MemberKey {
    guild: 1_400_000_000_000_000_001,
    user: 1_400_000_000_000_000_003,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_document_goes_to_dead_letters_and_is_retried_once() {
    let db = fresh_db().await;
    let spool = tempfile::tempdir().unwrap();
    let totals = db.db().collection::<Document>("member_stats");
    let poison_id = format!("{}:{}", POISON.guild, POISON.user);
    // A legacy document with a string where a count belongs.
    totals
        .insert_one(doc! { "_id": &poison_id, "messages": "many" })
        .await
        .unwrap();

    let running = spawn_app(test_settings(&db.uri, &db.name, spool.path())).await;
    let app = running.app.clone();
    // Two messages of the poison member on two days: two ops (messages of
    // one member and day would fold into one).
    let two_days_ago = now_millis() - 2 * 86_400_000;
    app.message(POISON, now_millis());
    app.message(OTHER, now_millis());
    app.message(POISON, two_days_ago);
    app.message(OTHER, now_millis());
    // The writer is not stuck behind the poison document.
    assert!(
        app.writer().wait_idle(Duration::from_secs(20)).await,
        "{:?}",
        app.writer().status()
    );
    assert_eq!(app.writer().status().dead_letters, 2);
    let other = app.store().member(OTHER, 0, "0000-00-00").await.unwrap();
    assert_eq!(other.messages, 2);
    running.stop().await;

    let dir = spool.path().to_str().unwrap();
    let env = [
        ("MONGODB_URI", db.uri.as_str()),
        ("MONGODB_DB", db.name.as_str()),
        ("SPOOL_DIR", dir),
    ];
    let (status, stdout, stderr) = run_cli(&["dead-letters"], &env);
    assert!(status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("2 dead letters") && stdout.contains(&format!("member_stats/{poison_id}")),
        "{stdout}"
    );
    // `check` reports them (MongoDB itself is fine).
    let (status, stdout, _) = run_cli(&["check"], &env);
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("2 dead letters wait"), "{stdout}");
    // Not fixed yet: they stay.
    let (status, stdout, _) = run_cli(&["dead-letters", "--retry"], &env);
    assert!(!status.success(), "{stdout}");
    assert!(stdout.contains("still failing"), "{stdout}");

    totals
        .update_one(
            doc! { "_id": &poison_id },
            doc! { "$set": { "messages": 10_i64 } },
        )
        .await
        .unwrap();
    let file = DeadLetters::in_dir(spool.path());
    let letters = file.read().unwrap();
    assert_eq!(letters.len(), 2);
    let (status, stdout, stderr) = run_cli(&["dead-letters", "--retry"], &env);
    assert!(status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("re-applied 2"), "{stdout}");
    let messages = |d: Option<Document>| d.unwrap().get_i64("messages").unwrap();
    assert_eq!(
        messages(totals.find_one(doc! { "_id": &poison_id }).await.unwrap()),
        12
    );
    let (_, stdout, _) = run_cli(&["dead-letters"], &env);
    assert!(stdout.contains("no dead letters"), "{stdout}");

    // A retry that crashed after applying but before rewriting the file
    // finds the same letters again: they do not count twice.
    file.append(&letters).unwrap();
    let (status, stdout, _) = run_cli(&["dead-letters", "--retry"], &env);
    assert!(status.success(), "{stdout}");
    assert!(
        stdout.contains("re-applied 0 dead letters (2 had been applied"),
        "{stdout}"
    );
    assert_eq!(
        messages(totals.find_one(doc! { "_id": &poison_id }).await.unwrap()),
        12
    );
}
