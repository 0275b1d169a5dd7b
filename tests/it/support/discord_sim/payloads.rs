//! JSON builders (each checked against serenity's model types in `sim_smoke`).

use serde_json::{json, Map, Value};

use super::state::SimState;
use super::{SimUser, VoiceFlags, APP_ID, APP_OWNER_ID, BOT_NAME, BOT_USER_ID};

pub(super) fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

pub(super) fn bot_user() -> SimUser {
    SimUser::bot(BOT_USER_ID, BOT_NAME)
}

pub(super) fn bot_role_id(guild: u64) -> u64 {
    guild + 1
}

/// A user object. Hashes are null.
pub fn user_json(u: &SimUser) -> Value {
    json!({
        "id": u.id.to_string(),
        "username": u.name,
        "discriminator": "0",
        "global_name": if u.bot { Value::Null } else { json!(u.name) },
        "avatar": null,
        "banner": null,
        "accent_color": null,
        "bot": u.bot,
        "system": false,
        "public_flags": 0,
        "flags": 0,
        "avatar_decoration_data": null,
        "collectibles": null,
        "primary_guild": null,
    })
}

/// The bot's own user object (`GET /users/@me`, `READY`).
pub fn current_user_json() -> Value {
    let mut u = user_json(&bot_user());
    u["verified"] = json!(true);
    u["mfa_enabled"] = json!(true);
    u["email"] = Value::Null;
    u["locale"] = json!("en-US");
    u["premium_type"] = json!(0);
    u
}

/// A guild member with its user object.
pub fn member_json(u: &SimUser, joined_at: &str, roles: &[u64]) -> Value {
    let mut m = partial_member_json(joined_at, roles, None);
    m["user"] = user_json(u);
    m
}

/// A member without `user` (as in `MESSAGE_CREATE` `member` and `resolved.members`).
pub fn partial_member_json(joined_at: &str, roles: &[u64], permissions: Option<u64>) -> Value {
    let roles: Vec<String> = roles.iter().map(ToString::to_string).collect();
    let mut m = json!({
        "nick": null,
        "avatar": null,
        "banner": null,
        "roles": roles,
        "joined_at": joined_at,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
        "unusual_dm_activity_until": null,
        "avatar_decoration_data": null,
    });
    if let Some(p) = permissions {
        m["permissions"] = json!(p.to_string());
    }
    m
}

/// A role (with the `colors` object serenity 0.12.5 requires).
pub fn role_json(id: u64, name: &str, permissions: u64, position: u64, managed: bool) -> Value {
    json!({
        "id": id.to_string(),
        "name": name,
        "color": 0,
        "colors": { "primary_color": 0, "secondary_color": null, "tertiary_color": null },
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": position,
        "permissions": permissions.to_string(),
        "managed": managed,
        "mentionable": false,
        "flags": 0,
    })
}

/// A guild channel: `kind` 0 text, 2 voice.
pub fn channel_json(guild: u64, id: u64, kind: u64, name: &str, position: u64) -> Value {
    let mut c = json!({
        "id": id.to_string(),
        "type": kind,
        "guild_id": guild.to_string(),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": false,
        "parent_id": null,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "flags": 0,
    });
    if kind == 2 {
        c["bitrate"] = json!(64_000);
        c["user_limit"] = json!(0);
        c["rtc_region"] = Value::Null;
    } else {
        c["topic"] = Value::Null;
        c["last_pin_timestamp"] = Value::Null;
    }
    c
}

/// A voice state as in `GUILD_CREATE` `voice_states` (no `member`, no `guild_id`); the
/// `VOICE_STATE_UPDATE` dispatch adds both.
pub fn voice_state_json(user: u64, channel: Option<u64>, session_id: &str, f: VoiceFlags) -> Value {
    json!({
        "user_id": user.to_string(),
        "channel_id": channel.map(|c| c.to_string()),
        "session_id": session_id,
        "deaf": f.deaf,
        "mute": f.mute,
        "self_deaf": f.self_deaf,
        "self_mute": f.self_mute,
        "self_stream": f.self_stream,
        "self_video": f.self_video,
        "suppress": f.suppress,
        "request_to_speak_timestamp": null,
    })
}

pub(super) struct MessageSpec<'a> {
    pub(super) id: u64,
    pub(super) channel_id: u64,
    pub(super) guild_id: Option<u64>,
    pub(super) author: Value,
    pub(super) member: Option<Value>,
    pub(super) content: &'a str,
    pub(super) embeds: Vec<Value>,
    pub(super) webhook_id: Option<u64>,
    pub(super) kind: u64,
    pub(super) flags: u64,
    pub(super) application_id: Option<u64>,
    pub(super) mentions: Vec<Value>,
}

pub(super) fn message_json(m: &MessageSpec<'_>) -> Value {
    let mut v = json!({
        "id": m.id.to_string(),
        "channel_id": m.channel_id.to_string(),
        "author": m.author,
        "content": m.content,
        "timestamp": now_iso(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": m.mentions,
        "mention_roles": [],
        "attachments": [],
        "embeds": m.embeds,
        "components": [],
        "pinned": false,
        "type": m.kind,
        "flags": m.flags,
    });
    if let Some(g) = m.guild_id {
        v["guild_id"] = json!(g.to_string());
    }
    if let Some(member) = &m.member {
        v["member"] = member.clone();
    }
    if let Some(w) = m.webhook_id {
        v["webhook_id"] = json!(w.to_string());
    }
    if let Some(a) = m.application_id {
        v["application_id"] = json!(a.to_string());
    }
    v
}

/// Keeps the embed fields Discord would echo back, in the shape serenity's `Embed` reads.
pub(super) fn sanitize_embeds(body: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for e in body["embeds"].as_array().into_iter().flatten() {
        let mut x = Map::new();
        x.insert("type".into(), json!("rich"));
        for key in ["title", "description", "url", "timestamp", "color"] {
            if !e[key].is_null() {
                x.insert(key.into(), e[key].clone());
            }
        }
        if let Some(fields) = e["fields"].as_array() {
            let fields: Vec<Value> = fields
                .iter()
                .map(|f| json!({"name": f["name"], "value": f["value"], "inline": f["inline"].as_bool().unwrap_or(false)}))
                .collect();
            x.insert("fields".into(), json!(fields));
        }
        if let Some(t) = e["footer"]["text"].as_str() {
            x.insert("footer".into(), json!({ "text": t }));
        }
        if let Some(n) = e["author"]["name"].as_str() {
            let mut author = json!({ "name": n });
            if let Some(icon) = e["author"]["icon_url"].as_str() {
                author["icon_url"] = json!(icon);
            }
            x.insert("author".into(), author);
        }
        // Kept as sent (Discord would rewrite `attachment://` to its CDN URL).
        for key in ["image", "thumbnail"] {
            if let Some(url) = e[key]["url"].as_str() {
                x.insert(key.into(), json!({ "url": url }));
            }
        }
        out.push(Value::Object(x));
    }
    out
}

/// An application command as Discord returns it after registration.
pub fn command_json(id: u64, guild: Option<u64>, body: &Value) -> Value {
    let pick = |k: &str, default: Value| {
        if body[k].is_null() {
            default
        } else {
            body[k].clone()
        }
    };
    let mut c = json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "version": id.to_string(),
        "type": pick("type", json!(1)),
        "name": pick("name", json!("")),
        "description": pick("description", json!("")),
        "options": sanitize_options(&body["options"]),
        "default_member_permissions": if body["default_member_permissions"].is_string() { body["default_member_permissions"].clone() } else { Value::Null },
        "nsfw": body["nsfw"].as_bool().unwrap_or(false),
        "integration_types": if body["integration_types"].is_array() { body["integration_types"].clone() } else { json!([0]) },
        "contexts": if body["contexts"].is_array() { body["contexts"].clone() } else { Value::Null },
        "name_localizations": if body["name_localizations"].is_object() { body["name_localizations"].clone() } else { Value::Null },
        "description_localizations": if body["description_localizations"].is_object() { body["description_localizations"].clone() } else { Value::Null },
    });
    if let Some(dm) = body["dm_permission"].as_bool() {
        c["dm_permission"] = json!(dm);
    }
    if let Some(g) = guild {
        c["guild_id"] = json!(g.to_string());
    }
    c
}

/// Drops nulls from registered options (serde `default` does not cover an explicit null).
fn sanitize_options(options: &Value) -> Value {
    let Some(list) = options.as_array() else {
        return json!([]);
    };
    let out: Vec<Value> = list
        .iter()
        .map(|o| {
            let mut x = Map::new();
            if let Some(obj) = o.as_object() {
                for (k, v) in obj {
                    if v.is_null() {
                        continue;
                    }
                    if k == "options" {
                        x.insert(k.clone(), sanitize_options(v));
                    } else {
                        x.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(x)
        })
        .collect();
    Value::Array(out)
}

/// `GET /oauth2/applications/@me`.
pub fn application_json(guild_count: usize) -> Value {
    json!({
        "id": APP_ID.to_string(),
        "name": BOT_NAME,
        "icon": null,
        "description": "Discord simulator application",
        "summary": "",
        "type": null,
        "rpc_origins": [],
        "bot_public": true,
        "bot_require_code_grant": false,
        "terms_of_service_url": null,
        "privacy_policy_url": null,
        "owner": user_json(&SimUser::new(APP_OWNER_ID, "sim-owner")),
        "verify_key": "5e1c0a7b9d3f4e2a8c6b0d1f3e5a7c9b5e1c0a7b9d3f4e2a8c6b0d1f3e5a7c9b",
        "team": null,
        "flags": 0,
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "approximate_guild_count": guild_count,
        "approximate_user_install_count": 0,
        "bot": user_json(&bot_user()),
    })
}

pub(super) fn ready_json(st: &SimState, session_id: &str, shard: &Value) -> Value {
    let guilds: Vec<Value> = st
        .guilds
        .iter()
        .map(|g| json!({ "id": g.def.id.to_string(), "unavailable": true }))
        .collect();
    json!({
        "v": 10,
        "user": current_user_json(),
        "guilds": guilds,
        "session_id": session_id,
        "resume_gateway_url": st.gateway_url,
        "shard": shard,
        "application": { "id": APP_ID.to_string(), "flags": 0 },
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
        "user_settings": {},
        "session_type": "normal",
        "auth": {},
        "_trace": ["discord-sim"],
    })
}

pub(super) fn check<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(v.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Deserializes a dispatch frame exactly as serenity's shard does, and the `d` into the
/// specific event type (for a precise error message).
pub(super) fn validate_dispatch(t: &str, frame: &Value) -> Result<(), String> {
    use serenity::model::event as ev;
    let d = &frame["d"];
    match t {
        "READY" => check::<ev::ReadyEvent>(d)?,
        "GUILD_CREATE" => check::<ev::GuildCreateEvent>(d)?,
        "VOICE_STATE_UPDATE" => check::<ev::VoiceStateUpdateEvent>(d)?,
        "MESSAGE_CREATE" => check::<ev::MessageCreateEvent>(d)?,
        "INTERACTION_CREATE" => check::<ev::InteractionCreateEvent>(d)?,
        "RESUMED" => check::<ev::ResumedEvent>(d)?,
        _ => {}
    }
    match serde_json::from_value::<ev::GatewayEvent>(frame.clone()) {
        Ok(ev::GatewayEvent::Dispatch(_, ev::Event::Unknown(_))) => {
            Err(format!("{t} parses as Event::Unknown"))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
