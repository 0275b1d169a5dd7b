//! `purge-guild`: an operator erases a whole server's data at once.

use anyhow::Context as _;

use super::{cannot_read, connect};
use crate::app::now_millis;
use crate::config::Settings;
use crate::store::{whole_guild, Actor, AuditEntry};

/// `purge-guild --guild ID`: a pending tombstone for the whole server (no
/// op of it applies from then on), its documents, settings and opt-outs
/// deleted, the audit entry. A running lease holder completes the
/// tombstone within seconds (or at its next start).
///
/// # Errors
/// MongoDB refused or cannot be reached.
pub async fn purge_guild(settings: &Settings, guild: u64) -> anyhow::Result<()> {
    let store = connect(&settings.mongo).await?;
    let now = now_millis();
    let all = whole_guild(guild);
    store
        .request_erasure(all, now)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let deleted = store
        .delete_member_documents(all)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let entry = AuditEntry {
        guild,
        at: now,
        actor_id: Actor::Operator.id(),
        action: "purge".to_owned(),
        user: None,
        what: None,
        amount: None,
        reason: None,
        old: None,
        new: None,
    };
    store
        .append_audit(&format!("purge:{guild}:operator:{now}"), &entry)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    println!("erased guild {guild} ({deleted} documents); a running bot finishes the erasure within seconds, or at its next start");
    Ok(())
}
