//! `check`: connect, create indexes, do the test write, say how it went.

use super::connect;
use crate::config::{redact_uri, MongoSettings};

/// `check`: connect, create indexes, do the test write, say how it went.
///
/// # Errors
/// Any step failed; the message names the server (password redacted).
pub async fn check(mongo: &MongoSettings) -> anyhow::Result<()> {
    let store = connect(mongo).await?;
    let uri = redact_uri(&mongo.uri);
    match store.prepare().await {
        Ok(()) => {
            println!(
                "OK: test write to {uri} (database {}, collection meta) succeeded",
                mongo.db
            );
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(
            "MongoDB check failed for {uri}: {}",
            redact_uri(&e.to_string())
        )),
    }
}
