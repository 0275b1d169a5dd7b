//! `check`: connect, create indexes, do the test write, say how it went;
//! then say what waits in `SPOOL_DIR`.

use super::connect;
use crate::config::{redact_uri, Settings};
use crate::durable::dead_letters::DeadLetters;

/// `check`: connect, create indexes, do the test write, say how it went.
/// Dead letters waiting beside the spool are reported too (they do not fail
/// the check: MongoDB works, a document does not).
///
/// # Errors
/// Any step failed; the message names the server (password redacted).
pub async fn check(settings: &Settings) -> anyhow::Result<()> {
    let mongo = &settings.mongo;
    let store = connect(mongo).await?;
    let uri = redact_uri(&mongo.uri);
    if let Err(e) = store.prepare().await {
        anyhow::bail!(
            "MongoDB check failed for {uri}: {}",
            redact_uri(&e.to_string())
        );
    }
    println!(
        "OK: test write to {uri} (database {}, collection meta) succeeded",
        mongo.db
    );
    let dead = DeadLetters::in_dir(&settings.spool.dir);
    match dead.read() {
        Ok(letters) if !letters.is_empty() => println!(
            "WARNING: {} dead letters wait in {} (increments a document refused); see `study-tracker dead-letters`",
            letters.len(),
            dead.path().display()
        ),
        Ok(_) => {}
        Err(e) => println!("WARNING: cannot read {}: {e}", dead.path().display()),
    }
    Ok(())
}
