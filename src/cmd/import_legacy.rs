//! `import-legacy`: add the previous bot's totals to one guild, once.

use anyhow::Context as _;

use super::connect;
use crate::config::{redact_uri, MongoSettings};

/// `import-legacy`: add the previous bot's totals to one guild, once.
///
/// # Errors
/// MongoDB cannot be read or written.
pub async fn import_legacy(mongo: &MongoSettings, guild: u64) -> anyhow::Result<()> {
    let store = connect(mongo).await?;
    let r = store
        .import_legacy(guild)
        .await
        .with_context(|| format!("import from {} failed", redact_uri(&mongo.uri)))?;
    println!(
        "imported {} members into guild {guild} ({} already imported earlier, {} skipped)",
        r.imported, r.already_imported, r.skipped
    );
    Ok(())
}
