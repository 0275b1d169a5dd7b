//! `/audit [member]`: the server's audit log (settings changes, corrections,
//! erasures), newest first, 10 entries a page with ◀ ▶. For server
//! managers (checked on every use, as `/settings`); ephemeral.

use poise::serenity_prelude as serenity;
use tracing::instrument;

use crate::core::paging::{Page, PER_PAGE};
use crate::discord::pager::{send_paged, PageView};
use crate::discord::{Context, Error};
use crate::render::audit::render_audit_page;

/// Show the server's audit log: settings changes, corrections, erasures.
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    default_member_permissions = "MANAGE_GUILD"
)]
#[instrument(skip_all, fields(command = "audit", guild_id))]
pub(super) async fn audit(
    ctx: Context<'_>,
    #[description = "Only the entries about this member"] member: Option<serenity::User>,
) -> Result<(), Error> {
    let Some(guild) = super::manager(ctx, "audit").await? else {
        return Ok(());
    };
    let user = member.as_ref().map(|m| m.id.get());
    let heading = member.as_ref().map_or_else(
        || "Audit log of this server".to_owned(),
        |m| format!("Audit log about {}", m.display_name()),
    );
    let first = match page(ctx, guild, user, &heading, 0).await {
        Ok(view) => view,
        Err(line) => return super::private(ctx, line).await,
    };
    send_paged(ctx, "audit", first, |index| {
        let heading = &heading;
        async move { page(ctx, guild, user, heading, index).await }
    })
    .await
}

/// Page `index` of the entries, read now.
async fn page(
    ctx: Context<'_>,
    guild: u64,
    user: Option<u64>,
    heading: &str,
    index: usize,
) -> Result<PageView, String> {
    let wanted = i64::try_from(Page::wanted(index, PER_PAGE)).unwrap_or(i64::MAX);
    let entries = ctx
        .data()
        .store()
        .audit_entries(guild, user, 0, wanted)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot read the audit log");
            "⚠️ The audit log cannot be read right now; please try again in a moment.".to_owned()
        })?;
    let page = Page::of(index, entries.len(), PER_PAGE, false);
    let shown = &entries[page.items()];
    let mut content = render_audit_page(shown, heading);
    if page.is_paged() {
        content = format!("{content}\n-# {}", page.label());
    }
    Ok(PageView {
        content,
        embeds: Vec::new(),
        page,
    })
}
