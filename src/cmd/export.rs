//! `export`: everything stored about one member of one server, as the JSON
//! `/privacy export` attaches.

use anyhow::Context as _;

use super::{cannot_read, connect};
use crate::config::Settings;
use crate::core::MemberKey;

/// `export --guild ID --user ID`: the JSON on stdout.
///
/// # Errors
/// MongoDB cannot be read.
pub async fn export(settings: &Settings, guild: u64, user: u64) -> anyhow::Result<()> {
    let store = connect(&settings.mongo).await?;
    let member = MemberKey { guild, user };
    let docs = store
        .member_documents(member)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&docs.export_json(member))?
    );
    Ok(())
}
