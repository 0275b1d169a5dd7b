//! Which server the store talks to, and the command sizes it gets: learnt
//! from `buildInfo` at start-up (`Store::detect_server`).

use mongodb::bson::Document;

/// Statements per `update` command until the server is known. FerretDB v1.24
/// (the test server) stops answering an `update` of 100 or more statements
/// that modify existing documents (observed: 98 take 0.2 s, 100 never
/// return); 64 keeps well clear of that.
pub(super) const SAFE_STATEMENTS_PER_COMMAND: usize = 64;
/// Statements per `update` command once `buildInfo` shows a real MongoDB
/// (which takes up to 100,000 and 48 MB messages; 1,000 small upserts stay
/// far below both).
pub(super) const MONGODB_STATEMENTS_PER_COMMAND: usize = 1_000;
/// `update` commands of one batch in flight at once on a real MongoDB. They
/// touch distinct documents, so their order does not matter. FerretDB v1.24
/// stalls on concurrent updates of existing documents, so until the server
/// is known (and on FerretDB) commands go one at a time.
pub(super) const MONGODB_COMMANDS_IN_FLIGHT: usize = 4;
/// The same on FerretDB v2 + `DocumentDB`, from the writer benchmark's server
/// ceiling (BENCHMARKS.md): each command runs in one `PostgreSQL` backend,
/// so statements per second grow with the commands in flight up to the
/// server's cores, and stop growing with the command size past a few hundred.
pub(super) const DOCUMENTDB_STATEMENTS_PER_COMMAND: usize = 1_000;
pub(super) const DOCUMENTDB_COMMANDS_IN_FLIGHT: usize = 4;

/// A name for the log, statements per `update` command and commands in
/// flight, from the server's `buildInfo`.
pub(super) fn sizes(info: &Document) -> (String, usize, usize) {
    let version = info.get_str("version").unwrap_or("unknown");
    if let Ok(f) = info.get_str("ferretdbVersion") {
        (format!("FerretDB {f}"), SAFE_STATEMENTS_PER_COMMAND, 1)
    } else if let Ok(f) = info.get_document("ferretdb") {
        // FerretDB v2 on DocumentDB behaves as MongoDB for the writer's
        // commands; its sizes come from the writer benchmark's ceiling.
        (
            format!(
                "FerretDB {} (DocumentDB, as MongoDB {version})",
                f.get_str("version").unwrap_or("v2")
            ),
            DOCUMENTDB_STATEMENTS_PER_COMMAND,
            DOCUMENTDB_COMMANDS_IN_FLIGHT,
        )
    } else {
        (
            format!("MongoDB {version}"),
            MONGODB_STATEMENTS_PER_COMMAND,
            MONGODB_COMMANDS_IN_FLIGHT,
        )
    }
}
