//! `adjust`: an operator's correction of one member's figures in one
//! server (what `/adjust` does; the actor recorded as `operator`). It
//! cannot use the running bot's spool, so its durable record is a request
//! in MongoDB and each document is guarded by the correction's id
//! (`store/corrections.rs`).

use anyhow::Context as _;

use super::{cannot_read, connect, guild_settings};
use crate::app::now_millis;
use crate::config::Settings;
use crate::core::calendar::local_day;
use crate::core::correction::{check_floor, check_reason, parse_amount, What};
use crate::core::MemberKey;
use crate::durable::op::Op;
use crate::render::adjust::render_adjusted;
use crate::store::Actor;

/// How long a request may sit before this command finishes it for an
/// `adjust` that was killed half-way.
const LEFT_BEHIND_MS: i64 = 60_000;

/// `adjust --guild ID --user ID --what W --amount A --reason R`.
///
/// # Errors
/// Bad input (nothing written), a figure it would take below zero, or
/// MongoDB refused or cannot be reached.
pub async fn adjust(
    settings: &Settings,
    guild: u64,
    user: u64,
    what: &str,
    amount: &str,
    reason: &str,
) -> anyhow::Result<()> {
    let what = What::parse(what).map_err(anyhow::Error::msg)?;
    let amount = parse_amount(what, amount).map_err(anyhow::Error::msg)?;
    let reason = check_reason(reason).map_err(anyhow::Error::msg)?;
    if guild == 0 || user == 0 {
        anyhow::bail!("--guild and --user take Discord ids (not 0)");
    }
    let store = connect(&settings.mongo).await?;
    let (tz, _) = guild_settings(&store, settings, guild).await?;
    let now = now_millis();
    store
        .finish_pending_corrections(now - LEFT_BEHIND_MS)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let member = MemberKey { guild, user };
    let day = local_day(now, tz);
    let (mut total, today) = store
        .member_figures(member, &day)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    check_floor(what, amount, &total, &today).map_err(anyhow::Error::msg)?;
    // Snowflake-like: the time, then random bits (unique without a counter).
    let id = (u64::try_from(now).unwrap_or(0) << 22) | (rand::random::<u64>() & 0x3f_ffff);
    let op = Op::Adjust {
        guild,
        user,
        id,
        what: what.name().to_owned(),
        amount,
        at: now,
        day: day.clone(),
        actor: Actor::Operator.id(),
        reason: reason.clone(),
    };
    store
        .apply_correction_directly(&op)
        .await
        .with_context(|| format!("the correction {id} is recorded but not applied yet: the next `adjust`, or the running bot within a minute, finishes it"))?;
    what.add_to(&mut total, amount);
    let line = render_adjusted(
        &format!("user {user}"),
        what,
        amount,
        &day,
        &reason,
        Some(&total),
    );
    println!("{}", line.replace('\n', " ").replace("**", ""));
    Ok(())
}
