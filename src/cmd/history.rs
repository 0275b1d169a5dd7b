//! `history`: print one member's latest sessions, as a table (times in
//! `TIMEZONE`) or JSON (times in UTC, RFC 3339).

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat};

use super::{cannot_read, connect};
use crate::config::Settings;
use crate::core::history::{sessions, with_corrections, Session};
use crate::core::{MemberKey, Millis};
use crate::render::render_history_table;

/// `history`: the member's last `limit` sessions, newest first. Only what
/// is stored: a session still open ends at its last credit (`end: null`).
///
/// # Errors
/// MongoDB cannot be read.
pub async fn history(
    settings: &Settings,
    guild: u64,
    user: u64,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let store = connect(&settings.mongo).await?;
    let stored = store
        .history(MemberKey { guild, user }, limit)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let (tz, _) = super::guild_settings(&store, settings, guild).await?;
    let mut list = with_corrections(
        sessions(&stored.segments, stored.open_segment_start),
        &stored.corrections,
    );
    list.truncate(limit);
    if json {
        println!("{}", to_json(&list));
    } else {
        print!("{}", render_history_table(&list, tz));
    }
    Ok(())
}

fn rfc3339(at: Millis) -> serde_json::Value {
    DateTime::from_timestamp_millis(at).map_or(serde_json::Value::Null, |t| {
        t.to_rfc3339_opts(SecondsFormat::Millis, true).into()
    })
}

/// `{"sessions": [{"start", "end", "channel_id", "cam_on_secs", "cam_off_secs"}]}`;
/// a correction's line has `"correction": {"what", "amount"}` too (its
/// `start` and `end` the moment it was made, `channel_id` null).
fn to_json(list: &[Session]) -> serde_json::Value {
    let sessions: Vec<serde_json::Value> = list
        .iter()
        .map(|s| {
            if let Some((what, amount)) = s.correction {
                return serde_json::json!({
                    "start": rfc3339(s.start),
                    "end": rfc3339(s.end),
                    "channel_id": serde_json::Value::Null,
                    "cam_on_secs": s.cam_on_secs,
                    "cam_off_secs": s.cam_off_secs,
                    "correction": { "what": what.name(), "amount": amount },
                });
            }
            serde_json::json!({
                "start": rfc3339(s.start),
                "end": if s.open { serde_json::Value::Null } else { rfc3339(s.end) },
                "channel_id": s.channel.to_string(),
                "cam_on_secs": s.cam_on_secs,
                "cam_off_secs": s.cam_off_secs,
            })
        })
        .collect();
    serde_json::json!({ "sessions": sessions })
}
