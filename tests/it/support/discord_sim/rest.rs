//! HTTP API: routing, users, channels, guilds, application commands and the bot's
//! channel messages (interaction routes are in `interactions`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::components::sanitize_components;
use super::gateway::token_ok;
use super::interactions::{followup, interaction_callback, message_text, webhook_message_route};
use super::payloads::{
    application_json, bot_user, channel_json, check, command_json, current_user_json, message_json,
    partial_member_json, sanitize_embeds, user_json, MessageSpec,
};
use super::state::{Inner, RegisteredCommand, SimState};
use super::{intents, SentMessage, APP_ID, BOT_USER_ID, FOLLOWUP};

pub(super) async fn http_fallback(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
) -> Response {
    inner
        .lock()
        .log_line(format!("HTTP {method} {uri} -> 404 (outside /api/v10)"));
    not_found()
}

pub(super) fn not_found() -> Response {
    discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found")
}

pub(super) fn discord_error(status: StatusCode, code: u64, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn ok_json(v: Value) -> Response {
    (StatusCode::OK, Json(v)).into_response()
}

/// A file uploaded with a message: its file name and bytes.
pub(super) type Upload = (String, Vec<u8>);

/// The JSON body, also from a multipart request's `payload_json` part, and
/// the files of a multipart request (`files[N]` parts, in order).
fn parse_body(headers: &HeaderMap, body: &[u8]) -> (Value, Vec<Upload>) {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("multipart/form-data") {
        let Some(boundary) = ct
            .split("boundary=")
            .nth(1)
            .map(|b| b.trim_matches('"').to_owned())
        else {
            return (Value::Null, Vec::new());
        };
        return parse_multipart(body, &boundary);
    }
    if body.is_empty() {
        (Value::Null, Vec::new())
    } else {
        (
            serde_json::from_slice(body).unwrap_or(Value::Null),
            Vec::new(),
        )
    }
}

/// `multipart/form-data` (RFC 7578), byte-exact: file parts are binary.
fn parse_multipart(body: &[u8], boundary: &str) -> (Value, Vec<Upload>) {
    let delimiter = format!("--{boundary}");
    let mut json = Value::Null;
    let mut files = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        let after = &rest[at + delimiter.len()..];
        if after.starts_with(b"--") {
            break; // the closing delimiter
        }
        let part_end = find(after, delimiter.as_bytes()).unwrap_or(after.len());
        let part = &after[..part_end];
        rest = &after[part_end..];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(h) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..h]).into_owned();
        let content = part[h + 4..]
            .strip_suffix(b"\r\n")
            .unwrap_or(&part[h + 4..]);
        let param = |key: &str| {
            let k = format!("{key}=\"");
            head.find(&k).and_then(|i| {
                let v = &head[i + k.len()..];
                v.find('"').map(|j| v[..j].to_owned())
            })
        };
        match param("name").as_deref() {
            Some("payload_json") => {
                json = serde_json::from_slice(content).unwrap_or(Value::Null);
            }
            Some(n) if n.starts_with("files[") => {
                files.push((param("filename").unwrap_or_default(), content.to_vec()));
            }
            _ => {}
        }
    }
    (json, files)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(super) async fn http_api(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches("/api/v10/").to_owned();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (body, files) = parse_body(&headers, &body);
    let needs_auth = !matches!(segs.first(), Some(&"interactions" | &"webhooks"));
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let response = if needs_auth && !token_ok(auth) {
        discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
    } else {
        let mut st = inner.lock();
        route(&mut st, &method, &segs, &body, &files)
    };
    let status = response.status().as_u16();
    inner.lock().log_line(format!(
        "HTTP {method} /api/v10/{path} -> {status}{}",
        body_summary(&segs, &body)
    ));
    inner.bump();
    response
}

fn body_summary(segs: &[&str], body: &Value) -> String {
    match segs {
        ["interactions", _, _, "callback"] => format!(" (callback type {})", body["type"]),
        ["applications", .., "commands"] if body.is_array() => {
            let names: Vec<&str> = body
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect();
            format!(" ({})", names.join(", "))
        }
        ["applications", .., "commands"] if body["name"].is_string() => {
            format!(" ({})", body["name"].as_str().unwrap_or(""))
        }
        _ => String::new(),
    }
}

pub(super) fn parse_id(s: &str) -> Option<u64> {
    s.parse().ok()
}

#[allow(clippy::too_many_lines)]
fn route(
    st: &mut SimState,
    method: &Method,
    segs: &[&str],
    body: &Value,
    files: &[Upload],
) -> Response {
    let m = method.as_str();
    match (m, segs) {
        ("GET", ["gateway"]) => ok_json(json!({ "url": st.gateway_url })),
        ("GET", ["gateway", "bot"]) => ok_json(json!({
            "url": st.gateway_url,
            "shards": 1,
            "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1 },
        })),
        ("GET", ["users", "@me"]) => {
            checked::<serenity::model::user::CurrentUser>(st, "GET /users/@me", current_user_json())
        }
        ("GET", ["users", id]) => {
            let Some(id) = parse_id(id) else {
                return not_found();
            };
            let u = st.find_user(None, id);
            ok_json(user_json(&u))
        }
        ("POST", ["users", "@me", "channels"]) => {
            let Some(recipient) = body["recipient_id"]
                .as_str()
                .and_then(parse_id)
                .or_else(|| body["recipient_id"].as_u64())
            else {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            };
            let channel = if let Some(c) = st.dm_channels.get(&recipient) {
                *c
            } else {
                let c = st.next_id();
                st.dm_channels.insert(recipient, c);
                c
            };
            let u = st.find_user(None, recipient);
            let dm = json!({ "id": channel.to_string(), "type": 1, "last_message_id": null, "flags": 0, "recipients": [user_json(&u)] });
            checked::<serenity::model::channel::PrivateChannel>(st, "POST /users/@me/channels", dm)
        }
        ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
            let app = application_json(st.guilds.len());
            checked::<serenity::model::application::CurrentApplicationInfo>(
                st,
                "GET /oauth2/applications/@me",
                app,
            )
        }
        (_, ["applications", _app, "commands"]) => commands_route(st, m, None, body),
        (_, ["applications", _app, "guilds", g, "commands"]) => match parse_id(g) {
            Some(g) => commands_route(st, m, Some(g), body),
            None => not_found(),
        },
        (_, ["applications", _app, "commands", id]) => command_route(st, m, None, id, body),
        (_, ["applications", _app, "guilds", g, "commands", id]) => match parse_id(g) {
            Some(g) => command_route(st, m, Some(g), id, body),
            None => not_found(),
        },
        ("POST", ["interactions", id, token, "callback"]) => {
            interaction_callback(st, id, token, body, files)
        }
        (_, ["webhooks", _app, token, "messages", mid]) => {
            webhook_message_route(st, m, token, mid, body, files)
        }
        ("POST", ["webhooks", _app, token]) => followup(st, token, body, files),
        ("POST", ["channels", c, "messages"]) => match parse_id(c) {
            Some(c) => bot_channel_message(st, c, body),
            None => not_found(),
        },
        ("POST", ["channels", _c, "typing"]) => StatusCode::NO_CONTENT.into_response(),
        ("GET", ["channels", _c, "messages"]) => ok_json(json!([])),
        ("GET", ["channels", c]) => {
            let Some(c) = parse_id(c) else {
                return not_found();
            };
            let Some(gi) = st.guild_of_channel(c) else {
                return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            };
            let (kind, name) = st.channel_kind_name(gi, c);
            let ch = channel_json(st.guilds[gi].def.id, c, kind, &name, 0);
            checked::<serenity::model::channel::Channel>(st, "GET /channels/{id}", ch)
        }
        ("GET", ["guilds", g, "members", u]) => {
            let (Some(g), Some(u)) = (parse_id(g), parse_id(u)) else {
                return not_found();
            };
            let Some(gi) = st.guild_index(g) else {
                return discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
            };
            if u != BOT_USER_ID && !st.guilds[gi].def.members.iter().any(|m| m.id == u) {
                return discord_error(StatusCode::NOT_FOUND, 10007, "Unknown Member");
            }
            let member = st.member_json(gi, u);
            checked::<serenity::model::guild::Member>(st, "GET /guilds/{g}/members/{u}", member)
        }
        ("GET", ["guilds", g, "channels"]) => {
            let Some(gi) = parse_id(g).and_then(|g| st.guild_index(g)) else {
                return discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
            };
            let guild = st.guild_create_json(gi, 0);
            ok_json(guild["channels"].clone())
        }
        ("GET", ["guilds", g, "roles"]) => {
            let Some(gi) = parse_id(g).and_then(|g| st.guild_index(g)) else {
                return discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
            };
            let guild = st.guild_create_json(gi, 0);
            ok_json(guild["roles"].clone())
        }
        _ => {
            st.log_line(format!("UNHANDLED route {m} /{}", segs.join("/")));
            not_found()
        }
    }
}

/// Answers with `v` after checking serenity can read it as `T`.
pub(super) fn checked<T: serde::de::DeserializeOwned>(
    st: &mut SimState,
    what: &str,
    v: Value,
) -> Response {
    if let Err(e) = check::<T>(&v) {
        st.payload_error(what, &e, &v);
    }
    ok_json(v)
}

fn commands_route(st: &mut SimState, m: &str, guild: Option<u64>, body: &Value) -> Response {
    use serenity::model::application::Command;
    match m {
        "GET" => {
            let list: Vec<Value> = st
                .commands
                .iter()
                .filter(|c| c.guild == guild)
                .map(|c| c.json.clone())
                .collect();
            ok_json(Value::Array(list))
        }
        "PUT" => {
            let Some(list) = body.as_array() else {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            };
            let mut old: Vec<RegisteredCommand> = Vec::new();
            let mut kept = Vec::new();
            for c in std::mem::take(&mut st.commands) {
                if c.guild == guild {
                    old.push(c);
                } else {
                    kept.push(c);
                }
            }
            st.commands = kept;
            let mut out = Vec::new();
            for b in list {
                let name = b["name"].as_str().unwrap_or("").to_owned();
                let id = match old.iter().find(|c| c.name == name) {
                    Some(c) => c.id,
                    None => st.next_id(),
                };
                let json = command_json(id, guild, b);
                out.push(json.clone());
                st.commands.push(RegisteredCommand {
                    id,
                    guild,
                    name,
                    json,
                });
            }
            let out = Value::Array(out);
            checked::<Vec<Command>>(st, "PUT commands", out)
        }
        "POST" => {
            let name = body["name"].as_str().unwrap_or("").to_owned();
            let existing = st
                .commands
                .iter()
                .position(|c| c.guild == guild && c.name == name);
            let id = match existing {
                Some(i) => st.commands.remove(i).id,
                None => st.next_id(),
            };
            let json = command_json(id, guild, body);
            st.commands.push(RegisteredCommand {
                id,
                guild,
                name,
                json: json.clone(),
            });
            checked::<Command>(st, "POST command", json)
        }
        _ => not_found(),
    }
}

fn command_route(
    st: &mut SimState,
    m: &str,
    guild: Option<u64>,
    id: &str,
    body: &Value,
) -> Response {
    let Some(id) = parse_id(id) else {
        return not_found();
    };
    let Some(i) = st
        .commands
        .iter()
        .position(|c| c.id == id && c.guild == guild)
    else {
        return discord_error(StatusCode::NOT_FOUND, 10063, "Unknown application command");
    };
    match m {
        "GET" => ok_json(st.commands[i].json.clone()),
        "DELETE" => {
            st.commands.remove(i);
            StatusCode::NO_CONTENT.into_response()
        }
        "PATCH" => {
            let mut merged = st.commands[i].json.clone();
            if let (Some(dst), Some(src)) = (merged.as_object_mut(), body.as_object()) {
                for (k, v) in src {
                    dst.insert(k.clone(), v.clone());
                }
            }
            let json = command_json(id, guild, &merged);
            json["name"]
                .as_str()
                .unwrap_or("")
                .clone_into(&mut st.commands[i].name);
            st.commands[i].json = json.clone();
            ok_json(json)
        }
        _ => not_found(),
    }
}

fn bot_channel_message(st: &mut SimState, channel: u64, body: &Value) -> Response {
    let gi = st.guild_of_channel(channel);
    let is_dm = st.dm_channels.values().any(|&c| c == channel);
    if gi.is_none() && !is_dm {
        return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    let guild_id = gi.map(|gi| st.guilds[gi].def.id);
    let mid = st.next_id();
    let content = body["content"].as_str().unwrap_or("");
    let mut msg = st.bot_message_json(mid, channel, guild_id, content, sanitize_embeds(body), 0, 0);
    if let Some(rows) = sanitize_components(st, "POST /channels/{id}/messages", body) {
        msg["components"] = rows;
    }
    st.bot_messages.push(SentMessage {
        channel_id: channel,
        guild_id,
        content: content.to_owned(),
        text: message_text(&msg),
        raw: msg.clone(),
    });
    if st.echo {
        st.echo_message(&msg);
    }
    checked::<serenity::model::channel::Message>(st, "POST /channels/{id}/messages", msg)
}

impl SimState {
    /// A message authored by the bot (type 0 channel message, type 20 command reply).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn bot_message_json(
        &self,
        id: u64,
        channel: u64,
        guild: Option<u64>,
        content: &str,
        embeds: Vec<Value>,
        kind: u64,
        flags: u64,
    ) -> Value {
        let member = guild.and_then(|g| self.guild_index(g)).map(|gi| {
            partial_member_json(&self.started_at, &self.member_roles(gi, BOT_USER_ID), None)
        });
        // Interaction replies (type 20) and follow-ups are sent through the app's webhook.
        let from_interaction = kind == 20 || kind == FOLLOWUP;
        let kind = if kind == FOLLOWUP { 0 } else { kind };
        message_json(&MessageSpec {
            id,
            channel_id: channel,
            guild_id: guild,
            author: user_json(&bot_user()),
            member,
            content,
            embeds,
            webhook_id: from_interaction.then_some(APP_ID),
            kind,
            flags,
            application_id: from_interaction.then_some(APP_ID),
            mentions: Vec::new(),
        })
    }

    /// The bot's own message comes back to it over the gateway.
    pub(super) fn echo_message(&mut self, msg: &Value) {
        let intent = if msg.get("guild_id").is_some() {
            (intents::GUILD_MESSAGES, "GUILD_MESSAGES")
        } else {
            (intents::DIRECT_MESSAGES, "DIRECT_MESSAGES")
        };
        self.dispatch("MESSAGE_CREATE", msg, Some(intent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_give_the_json_and_byte_exact_files() {
        let png: &[u8] = &[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n', 0, 0xFF];
        let mut body = Vec::new();
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"ud.png\"\r\nContent-Type: image/png\r\n\r\n",
        );
        body.extend_from_slice(png);
        body.extend_from_slice(
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"type\":4,\"data\":{\"embeds\":[]}}\r\n--XyZ--\r\n",
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        let (json, files) = parse_body(&headers, &body);
        assert_eq!(json["type"], 4);
        assert_eq!(files, vec![("ud.png".to_owned(), png.to_vec())]);
        // Plain JSON has no files.
        let (json, files) = parse_body(&HeaderMap::new(), br#"{"a":1}"#);
        assert_eq!((json["a"].as_i64(), files.len()), (Some(1), 0));
    }
}
