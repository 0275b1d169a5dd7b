//! The local copy of the settings in `SPOOL_DIR`: one JSON file, written
//! to a temporary name then renamed, so a crash leaves the old copy or the
//! new one. Read only at a start while MongoDB does not answer.

use std::collections::BTreeSet;
use std::path::Path;

use crate::core::settings::GuildSettings;
use crate::core::MemberKey;

pub(super) struct Copy {
    pub(super) servers: Vec<(u64, GuildSettings)>,
    pub(super) opted_out: Vec<MemberKey>,
}

pub(super) fn write(path: &Path, copy: &Copy) -> std::io::Result<()> {
    let servers: Vec<serde_json::Value> = copy
        .servers
        .iter()
        .map(|(g, s)| {
            serde_json::json!({
                "guild": g.to_string(),
                "timezone": s.timezone.map(chrono_tz::Tz::name),
                "excluded": s.excluded.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "streak_min_minutes": s.streak_min_minutes,
            })
        })
        .collect();
    let out: Vec<[String; 2]> = copy
        .opted_out
        .iter()
        .map(|m| [m.guild.to_string(), m.user.to_string()])
        .collect();
    let body = serde_json::json!({ "servers": servers, "opted_out": out });
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&body)?)?;
    std::fs::rename(&tmp, path)
}

pub(super) fn read(path: &Path) -> Option<Copy> {
    let body: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let id = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<u64>().ok());
    let servers = body["servers"]
        .as_array()?
        .iter()
        .filter_map(|s| {
            let excluded: BTreeSet<u64> = s["excluded"]
                .as_array()
                .map(|a| a.iter().filter_map(id).collect())
                .unwrap_or_default();
            Some((
                id(&s["guild"])?,
                GuildSettings {
                    timezone: s["timezone"].as_str().and_then(|t| t.parse().ok()),
                    excluded,
                    streak_min_minutes: s["streak_min_minutes"]
                        .as_u64()
                        .and_then(|m| u32::try_from(m).ok()),
                },
            ))
        })
        .collect();
    let opted_out = body["opted_out"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(MemberKey {
                        guild: id(&p[0])?,
                        user: id(&p[1])?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Copy { servers, opted_out })
}
