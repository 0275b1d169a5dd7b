//! `erase`: an operator erases one member's data in one server.

use anyhow::Context as _;

use super::{cannot_read, connect};
use crate::app::now_millis;
use crate::config::Settings;
use crate::core::MemberKey;
use crate::store::{Actor, AuditEntry};

/// `erase --guild ID --user ID`: a pending tombstone (no op of theirs
/// applies from then on), their documents deleted, the audit entry. The
/// lease holder completes the tombstone at its own last sequence number
/// within a few seconds (or at its next start), deleting again what it
/// applied meanwhile.
///
/// # Errors
/// MongoDB refused or cannot be reached.
pub async fn erase(settings: &Settings, guild: u64, user: u64) -> anyhow::Result<()> {
    let store = connect(&settings.mongo).await?;
    let member = MemberKey { guild, user };
    let now = now_millis();
    store
        .request_erasure(member, now)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let deleted = store
        .delete_member_documents(member)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let entry = AuditEntry {
        guild,
        at: now,
        actor_id: Actor::Operator.id(),
        action: "erase".to_owned(),
        user: Some(user),
        what: None,
        amount: None,
        reason: None,
        old: None,
        new: None,
    };
    store
        .append_audit(&format!("erase:{guild}:{user}:operator:{now}"), &entry)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    println!("erased user {user} in guild {guild} ({deleted} documents); a running bot finishes the erasure within seconds, or at its next start");
    Ok(())
}
