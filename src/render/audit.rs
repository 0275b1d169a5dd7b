//! `/audit` and `study-tracker audit`: the audit log's entries, newest
//! first.

use std::fmt::Write as _;

use chrono::TimeZone;
use chrono_tz::Tz;

use super::format_duration;
use crate::store::AuditEntry;

/// One entry as a line: who did what, to whom, why. `mention` turns ids
/// into what the reader sees (`<@id>` on Discord, the id in a terminal).
fn describe(e: &AuditEntry, mention: fn(&str) -> String) -> String {
    let actor = if e.actor_id == "operator" {
        "an operator".to_owned()
    } else if e.actor_id == "retention" {
        "the retention".to_owned()
    } else {
        mention(&e.actor_id)
    };
    let whom = e.user.map_or_else(String::new, |u| mention(&u.to_string()));
    let what = e.what.as_deref().unwrap_or("");
    match e.action.as_str() {
        "settings" => format!(
            "{actor} changed {what}: {} → {}",
            e.old.as_deref().unwrap_or("?"),
            e.new.as_deref().unwrap_or("?")
        ),
        "adjust" => {
            let amount = e.amount.unwrap_or(0);
            let shown = if what == "messages" {
                format!("{amount:+} messages")
            } else {
                let sign = if amount < 0 { "-" } else { "+" };
                format!(
                    "{sign}{} {}",
                    format_duration(amount.abs()),
                    what.replace('_', " ")
                )
            };
            format!(
                "{actor} adjusted {whom}: {shown} ({})",
                e.reason.as_deref().unwrap_or("")
            )
        }
        "erase" => format!("{actor} erased the data of {whom}"),
        "purge" => format!("{actor} erased the data of the whole server"),
        other => format!("{actor}: {other} {what}"),
    }
}

/// A page of `/audit` (Discord markdown, times as Discord timestamps in the
/// reader's own zone).
#[must_use]
pub fn render_audit_page(entries: &[AuditEntry], heading: &str) -> String {
    let mut out = format!("**{heading}**\n");
    if entries.is_empty() {
        out.push_str("Nothing recorded yet.");
        return out;
    }
    for e in entries {
        let _ = writeln!(
            out,
            "<t:{}:f> · {}",
            e.at.div_euclid(1000),
            describe(e, |id| format!("<@{id}>"))
        );
    }
    out.trim_end().to_owned()
}

/// `audit`'s table, times in `tz`.
#[must_use]
pub fn render_audit_table(entries: &[AuditEntry], tz: Tz) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str("no audit entries\n");
    }
    for e in entries {
        let at = chrono::DateTime::from_timestamp_millis(e.at)
            .map(|t| {
                tz.from_utc_datetime(&t.naive_utc())
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        let _ = writeln!(out, "{at}  {}", describe(e, |id| format!("user {id}")));
    }
    out
}

/// `audit --json`: `{"entries": [...]}`, ids as strings, `at` in RFC 3339 UTC.
#[must_use]
pub fn audit_json(entries: &[AuditEntry]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "at": chrono::DateTime::from_timestamp_millis(e.at).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                "actor_id": e.actor_id,
                "action": e.action,
                "user_id": e.user.map(|u| u.to_string()),
                "what": e.what,
                "amount": e.amount,
                "reason": e.reason,
                "old": e.old,
                "new": e.new,
            })
        })
        .collect();
    serde_json::json!({ "entries": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, what: &str, amount: Option<i64>) -> AuditEntry {
        AuditEntry {
            guild: 1,
            at: 1_767_268_800_000,
            actor_id: "42".into(),
            action: action.into(),
            user: (action != "settings").then_some(7),
            what: Some(what.into()),
            amount,
            reason: (action == "adjust").then(|| "missed by the bot".into()),
            old: (action == "settings").then(|| "UTC".into()),
            new: (action == "settings").then(|| "Asia/Kolkata".into()),
        }
    }

    #[test]
    fn entries_read_as_sentences_in_every_form() {
        let e = [
            entry("adjust", "camera_on", Some(-2_700)),
            entry("adjust", "messages", Some(3)),
            entry("settings", "timezone", None),
            entry("erase", "", None),
        ];
        let page = render_audit_page(&e, "Audit log");
        for want in [
            "<t:1767268800:f> · <@42> adjusted <@7>: -45m 0s camera on (missed by the bot)",
            "<@42> adjusted <@7>: +3 messages (missed by the bot)",
            "<@42> changed timezone: UTC → Asia/Kolkata",
            "<@42> erased the data of <@7>",
        ] {
            assert!(page.contains(want), "{want:?} not in\n{page}");
        }
        let table = render_audit_table(&e[..1], chrono_tz::Asia::Kolkata);
        assert!(
            table.starts_with("2026-01-01 17:30:00  user 42 adjusted user 7"),
            "{table}"
        );
        let json = audit_json(&e[..1]);
        assert_eq!(json["entries"][0]["at"], "2026-01-01T12:00:00.000Z");
        assert_eq!(json["entries"][0]["user_id"], "7");
        assert_eq!(json["entries"][0]["amount"], -2_700);
        assert_eq!(
            render_audit_page(&[], "Audit log"),
            "**Audit log**\nNothing recorded yet."
        );
    }
}
