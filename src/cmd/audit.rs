//! `audit`: print a server's audit log, newest first.

use anyhow::Context as _;

use super::{cannot_read, connect};
use crate::config::Settings;
use crate::render::audit::{audit_json, render_audit_table};

/// `audit --guild ID [--user ID] [--limit N] [--json]`.
///
/// # Errors
/// A limit below 1, or MongoDB cannot be read.
pub async fn audit(
    settings: &Settings,
    guild: u64,
    user: Option<u64>,
    limit: i64,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(limit >= 1, "--limit must be at least 1, not {limit}");
    let store = connect(&settings.mongo).await?;
    let entries = store
        .audit_entries(guild, user, 0, limit)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    if json {
        println!("{}", audit_json(&entries));
    } else {
        print!(
            "{}",
            render_audit_table(&entries, settings.tracking.timezone)
        );
    }
    Ok(())
}
