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
    println!(
        "{}",
        lease_line(&store, settings.tracking.lease_ttl_secs).await
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
    let fenced = DeadLetters::fenced_in_dir(&settings.spool.dir);
    if let Ok(letters) = fenced.read() {
        if !letters.is_empty() {
            println!(
                "NOTE: {} increments in {} were counted under a lease this instance lost and set aside (kept for inspection; each says whether MongoDB holds it: never re-apply them by hand)",
                letters.len(),
                fenced.path().display()
            );
        }
    }
    Ok(())
}

/// Who holds the lease, as stored (`LEASE_TTL_SECS=0`: none is used).
async fn lease_line(store: &crate::store::Store, ttl_secs: u64) -> String {
    if ttl_secs == 0 {
        return "lease: off (LEASE_TTL_SECS=0: run exactly one instance)".into();
    }
    let now = chrono::Utc::now().timestamp_millis();
    match store.read_lease().await {
        Ok(None) => "lease: not taken yet (the first instance to start takes it)".into(),
        Ok(Some(l)) if l.released => format!(
            "lease: released by {} at epoch {} (the next instance takes it at once)",
            l.holder, l.epoch
        ),
        Ok(Some(l)) if l.expires_at > now => format!(
            "lease: held by {} at epoch {}, valid for {} s more unless renewed",
            l.holder,
            l.epoch,
            crate::core::whole_secs(now, l.expires_at)
        ),
        Ok(Some(l)) => format!(
            "lease: expired {} s ago (last held by {} at epoch {}); the next instance takes it",
            crate::core::whole_secs(l.expires_at, now),
            l.holder,
            l.epoch
        ),
        Err(e) => format!("WARNING: cannot read the lease: {e}"),
    }
}
