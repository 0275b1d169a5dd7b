//! `erase` and `purge-guild`: an operator erases one member's data in one
//! server, or a whole server's.

use anyhow::Context as _;

use super::{cannot_read, connect};
use crate::app::now_millis;
use crate::config::Settings;
use crate::core::MemberKey;
use crate::store::{whole_guild, Actor, AuditEntry};

/// `erase --guild ID --user ID`.
///
/// # Errors
/// MongoDB refused or cannot be reached.
pub async fn erase(settings: &Settings, guild: u64, user: u64) -> anyhow::Result<()> {
    let deleted = erase_key(settings, MemberKey { guild, user }).await?;
    println!("erased user {user} in guild {guild} ({deleted} documents); a running bot finishes the erasure within seconds, or at its next start");
    Ok(())
}

/// `purge-guild --guild ID`: the whole server, its settings and opt-outs.
///
/// # Errors
/// MongoDB refused or cannot be reached.
pub async fn purge_guild(settings: &Settings, guild: u64) -> anyhow::Result<()> {
    let deleted = erase_key(settings, whole_guild(guild)).await?;
    println!("erased guild {guild} ({deleted} documents); a running bot finishes the erasure within seconds, or at its next start");
    Ok(())
}

/// A pending tombstone (no op it covers applies from then on), the
/// documents deleted, the audit entry (actor `operator`). The lease holder
/// completes the tombstone at its own last sequence number within a few
/// seconds (or at its next start), deleting again what it applied
/// meanwhile. Returns how many documents were deleted.
async fn erase_key(settings: &Settings, key: MemberKey) -> anyhow::Result<u64> {
    let store = connect(&settings.mongo).await?;
    let now = now_millis();
    store
        .request_erasure(key, now)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let deleted = store
        .delete_member_documents(key)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let entry = AuditEntry::erasure(key, &Actor::Operator, now);
    store
        .append_audit(
            &format!("erase:{}:{}:operator:{now}", key.guild, key.user),
            &entry,
        )
        .await
        .with_context(cannot_read(&settings.mongo))?;
    Ok(deleted)
}
