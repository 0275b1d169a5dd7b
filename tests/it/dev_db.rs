//! `scripts/dev-db.sh`: starts the test database on the port and folder it
//! is given, prints a `MONGODB_URI` the bot's driver can use, says it runs,
//! and stops on `stop` keeping its data.

use std::process::Command;

use mongodb::bson::doc;
use mongodb::Client;

fn dev_db(args: &[&str], dir: &std::path::Path, port: u16) -> (bool, String, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/dev-db.sh"))
        .args(args)
        .env("DEV_DB_DIR", dir)
        .env("DEV_DB_PORT", port.to_string())
        .output()
        .expect("run scripts/dev-db.sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn dev_db_starts_prints_the_uri_and_stops_keeping_the_data() {
    // The same server the suite runs on; without it (FerretDB v1 fallback,
    // no root) the script cannot build it either.
    let usable = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/docdb/docdb.sh"))
        .arg("built")
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("dev_db: FerretDB v2 + DocumentDB is not built here (no root?); test skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dev-db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking({
        let data = data.clone();
        move || dev_db(&[], &data, port)
    })
    .await
    .unwrap();
    assert!(ok, "dev-db start failed: {stdout}{stderr}");
    let uri = stdout
        .lines()
        .find_map(|l| l.strip_prefix("dev-db: MONGODB_URI="))
        .unwrap_or_else(|| panic!("no MONGODB_URI line in {stdout:?}"))
        .to_owned();
    assert_eq!(uri, format!("mongodb://127.0.0.1:{port}/"));

    let client = Client::with_uri_str(&uri).await.unwrap();
    let coll = client.database("devdb_check").collection("c");
    coll.insert_one(doc! { "_id": 1, "kept": true })
        .await
        .unwrap();
    let (ok, status, _) = dev_db(&["status"], &data, port);
    assert!(ok && status.contains(&uri), "status: {status}");

    let (ok, _, stderr) = dev_db(&["stop"], &data, port);
    assert!(ok, "stop: {stderr}");
    let (running, _, _) = dev_db(&["status"], &data, port);
    assert!(!running, "still running after stop");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port still answers after stop"
    );

    // Started again on the same folder: the data is still there.
    let (ok, stdout, stderr) = dev_db(&[], &data, port);
    assert!(ok, "restart: {stdout}{stderr}");
    let client = Client::with_uri_str(&uri).await.unwrap();
    let got = client
        .database("devdb_check")
        .collection::<mongodb::bson::Document>("c")
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap();
    assert_eq!(got, Some(doc! { "_id": 1, "kept": true }));
    let (ok, _, stderr) = dev_db(&["stop"], &data, port);
    assert!(ok, "stop: {stderr}");
}
