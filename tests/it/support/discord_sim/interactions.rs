//! Slash-command interactions: the `INTERACTION_CREATE` payload, the bot's callbacks
//! (every one recorded; only the first acknowledges), follow-ups and `@original` edits,
//! and the reply the tests read.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::components::{original_owner, sanitize_components, update_pressed_message};
use super::payloads::{
    check, member_json, now_iso, partial_member_json, sanitize_embeds, user_json,
};
use super::rest::{checked, discord_error, not_found, parse_id, Upload};
use super::state::{InteractionRecord, SimState};
use super::{
    CallbackRecord, CommandReply, DiscordSim, SimOption, ALL_PERMISSIONS, APP_ID, BOT_USER_ID,
    EPHEMERAL, EVERYONE_PERMISSIONS, FOLLOWUP,
};

impl SimState {
    #[allow(clippy::too_many_lines)]
    pub(super) fn interaction_json(
        &mut self,
        gi: usize,
        channel: u64,
        user: u64,
        name: &str,
        options: &[SimOption],
    ) -> (Value, u64, String) {
        let guild = self.guilds[gi].def.id;
        let id = self.next_id();
        let token = format!("sim-interaction-token-{id}");
        let mut path: Vec<&str> = name.split_whitespace().collect();
        let top = if path.is_empty() {
            name.to_owned()
        } else {
            path.remove(0).to_owned()
        };
        let cmd = self
            .commands
            .iter()
            .find(|c| c.name == top && c.guild == Some(guild))
            .or_else(|| {
                self.commands
                    .iter()
                    .find(|c| c.name == top && c.guild.is_none())
            });
        let (command_id, command_guild) = match cmd {
            Some(c) => (c.id, c.guild),
            None => (0, None),
        };
        if cmd.is_none() {
            self.log_line(format!(
                "note: /{top} invoked but the bot never registered it; using a made-up id"
            ));
        }
        let command_id = if command_id == 0 {
            self.next_id()
        } else {
            command_id
        };

        let mut resolved_users = Map::new();
        let mut resolved_members = Map::new();
        let mut resolved_channels = Map::new();
        let mut opts = Vec::new();
        for o in options {
            let (kind, value) = match o {
                SimOption::User(_, uid) => {
                    let u = self.find_user(Some(gi), *uid);
                    resolved_users.insert(uid.to_string(), user_json(&u));
                    if self.guilds[gi].def.members.iter().any(|m| m.id == *uid)
                        || *uid == BOT_USER_ID
                    {
                        let perms = if *uid == BOT_USER_ID {
                            ALL_PERMISSIONS
                        } else {
                            EVERYONE_PERMISSIONS
                        };
                        resolved_members.insert(
                            uid.to_string(),
                            partial_member_json(
                                &self.started_at,
                                &self.member_roles(gi, *uid),
                                Some(perms),
                            ),
                        );
                    }
                    (6, json!(uid.to_string()))
                }
                SimOption::String(_, s) => (3, json!(s)),
                SimOption::Integer(_, i) => (4, json!(i)),
                SimOption::Boolean(_, b) => (5, json!(b)),
                SimOption::Number(_, n) => (10, json!(n)),
                SimOption::Channel(_, c) => {
                    let (ctype, cname) = self.channel_kind_name(gi, *c);
                    let parent = self.parent_of(gi, *c).map(|p| p.to_string());
                    resolved_channels.insert(
                        c.to_string(),
                        json!({"id": c.to_string(), "name": cname, "type": ctype, "permissions": ALL_PERMISSIONS.to_string(), "parent_id": parent}),
                    );
                    (7, json!(c.to_string()))
                }
            };
            opts.push(json!({ "name": o.name(), "type": kind, "value": value }));
        }
        // Wrap the leaf options in subcommand (type 1) / group (type 2) layers.
        let mut leaf = opts;
        for (depth, sub) in path.iter().enumerate().rev() {
            let kind = if depth + 1 == path.len() { 1 } else { 2 };
            leaf = vec![json!({ "name": sub, "type": kind, "options": leaf })];
        }
        let mut resolved = Map::new();
        if !resolved_users.is_empty() {
            resolved.insert("users".into(), Value::Object(resolved_users));
        }
        if !resolved_members.is_empty() {
            resolved.insert("members".into(), Value::Object(resolved_members));
        }
        if !resolved_channels.is_empty() {
            resolved.insert("channels".into(), Value::Object(resolved_channels));
        }
        let mut data = json!({
            "id": command_id.to_string(),
            "name": top,
            "type": 1,
            "options": leaf,
        });
        if !resolved.is_empty() {
            data["resolved"] = Value::Object(resolved);
        }
        if let Some(g) = command_guild {
            data["guild_id"] = json!(g.to_string());
        }
        self.interaction_envelope(gi, channel, user, (id, &token), 2, &data)
    }

    /// An `INTERACTION_CREATE` payload of `kind` (2 command, 3 message component) in guild
    /// `gi`'s `channel`, from member `user`, around `data`: everything serenity 0.12's
    /// `CommandInteraction` and `ComponentInteraction` require (a component interaction
    /// also needs `message`, added by the caller).
    pub(super) fn interaction_envelope(
        &self,
        gi: usize,
        channel: u64,
        user: u64,
        (id, token): (u64, &str),
        kind: u64,
        data: &Value,
    ) -> (Value, u64, String) {
        let guild = self.guilds[gi].def.id;
        let invoker = self.find_user(Some(gi), user);
        let mut member = member_json(&invoker, &self.started_at, &self.member_roles(gi, user));
        member["permissions"] = json!(self.member_permissions(gi, user).to_string());
        let (ctype, cname) = self.channel_kind_name(gi, channel);
        let parent = self.parent_of(gi, channel).map(|p| p.to_string());
        let payload = json!({
            "id": id.to_string(),
            "application_id": APP_ID.to_string(),
            "type": kind,
            "data": data,
            "guild": { "id": guild.to_string(), "locale": "en-US", "features": [] },
            "guild_id": guild.to_string(),
            "channel": {
                "id": channel.to_string(),
                "type": ctype,
                "name": cname,
                "guild_id": guild.to_string(),
                "permissions": EVERYONE_PERMISSIONS.to_string(),
                "parent_id": parent,
                "flags": 0,
                "nsfw": false,
                "position": 0,
                "last_message_id": null,
                "rate_limit_per_user": 0,
                "topic": null,
            },
            "channel_id": channel.to_string(),
            "member": member,
            "token": token,
            "version": 1,
            "app_permissions": ALL_PERMISSIONS.to_string(),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": { "0": guild.to_string() },
            "context": 0,
            "attachment_size_limit": 26_214_400,
        });
        (payload, id, token.to_owned())
    }
}

impl DiscordSim {
    /// Every callback the bot posted for interaction `id`, in arrival order: how many it
    /// got, and which one was accepted (only the first can be; later ones were answered
    /// HTTP 400, code 40060). Empty for an unknown id.
    pub fn interaction_callbacks(&self, id: u64) -> Vec<CallbackRecord> {
        let st = self.inner.lock();
        st.interactions
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.attempts.clone())
            .unwrap_or_default()
    }

    /// Waits until interaction `id` got at least `n` callbacks; returns them all (fewer on
    /// timeout).
    pub async fn wait_interaction_callbacks(
        &self,
        id: u64,
        n: usize,
        timeout: Duration,
    ) -> Vec<CallbackRecord> {
        self.wait_until(timeout, |st| {
            st.interactions
                .iter()
                .any(|r| r.id == id && r.attempts.len() >= n)
        })
        .await;
        self.interaction_callbacks(id)
    }
}

/// The answer to an interaction, once there is one.
pub(super) fn reply_of(rec: &InteractionRecord) -> Option<CommandReply> {
    let first = rec.callbacks.first()?;
    let callback_type = first["type"].as_u64().unwrap_or(0);
    let flags_of = |v: &Value| v["flags"].as_u64().unwrap_or(0);
    match callback_type {
        4 => {
            let data = first["data"].clone();
            Some(CommandReply {
                text: message_text(&data),
                ephemeral: flags_of(&data) & EPHEMERAL != 0,
                deferred: false,
                callback_type,
                raw: data,
                attachments: rec.original_files.clone(),
            })
        }
        5 => {
            let defer_ephemeral = flags_of(&first["data"]) & EPHEMERAL != 0;
            let (body, attachments) = if rec.original_edited {
                (rec.original.clone()?, rec.original_files.clone())
            } else {
                (rec.followups.first()?.clone(), rec.followup_files.clone())
            };
            Some(CommandReply {
                text: message_text(&body),
                ephemeral: defer_ephemeral || flags_of(&body) & EPHEMERAL != 0,
                deferred: true,
                callback_type,
                raw: body,
                attachments,
            })
        }
        _ => Some(CommandReply {
            text: message_text(&first["data"]),
            ephemeral: false,
            deferred: false,
            callback_type,
            raw: first.clone(),
            attachments: Vec::new(),
        }),
    }
}

/// Content, then each embed's title, description, fields and footer, one per line.
pub(super) fn message_text(body: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(c) = body["content"].as_str() {
        if !c.is_empty() {
            lines.push(c.to_owned());
        }
    }
    for e in body["embeds"].as_array().into_iter().flatten() {
        for key in ["title", "description"] {
            if let Some(s) = e[key].as_str() {
                lines.push(s.to_owned());
            }
        }
        for f in e["fields"].as_array().into_iter().flatten() {
            lines.push(format!(
                "{}: {}",
                f["name"].as_str().unwrap_or(""),
                f["value"].as_str().unwrap_or("")
            ));
        }
        if let Some(s) = e["footer"]["text"].as_str() {
            lines.push(s.to_owned());
        }
    }
    lines.join("\n")
}

pub(super) fn interaction_callback(
    st: &mut SimState,
    id: &str,
    token: &str,
    body: &Value,
    files: &[Upload],
) -> Response {
    let Some(id) = parse_id(id) else {
        return not_found();
    };
    let Some(ri) = st
        .interactions
        .iter()
        .position(|r| r.id == id && r.token == token)
    else {
        return discord_error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    };
    let rec = &st.interactions[ri];
    let late = rec.callbacks.is_empty()
        && rec.parent.is_some()
        && st.press_window.is_some_and(|w| rec.created.elapsed() > w);
    if late {
        // Discord forgets an interaction nobody answered within 3 s.
        st.interactions[ri].attempts.push(CallbackRecord {
            body: body.clone(),
            accepted: false,
            status: 404,
            error_code: Some(10062),
        });
        return discord_error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    }
    if !st.interactions[ri].callbacks.is_empty() {
        st.interactions[ri].attempts.push(CallbackRecord {
            body: body.clone(),
            accepted: false,
            status: 400,
            error_code: Some(40060),
        });
        return discord_error(
            StatusCode::BAD_REQUEST,
            40060,
            "Interaction has already been acknowledged.",
        );
    }
    st.interactions[ri].attempts.push(CallbackRecord {
        body: body.clone(),
        accepted: true,
        status: 204,
        error_code: None,
    });
    let kind = body["type"].as_u64().unwrap_or(0);
    let data = &body["data"];
    let (channel_id, guild_id) = (st.interactions[ri].channel_id, st.interactions[ri].guild_id);
    st.interactions[ri].callbacks.push(body.clone());
    if kind == 4 || kind == 5 {
        let mid = st.next_id();
        let content = if kind == 4 {
            data["content"].as_str().unwrap_or("")
        } else {
            ""
        };
        let flags = data["flags"].as_u64().unwrap_or(0) | if kind == 5 { 1 << 7 } else { 0 };
        check_attachment_refs(st, "interaction callback", data, files);
        let mut msg = st.bot_message_json(
            mid,
            channel_id,
            guild_id,
            content,
            sanitize_embeds(data),
            20,
            flags,
        );
        msg["attachments"] = attachments_json(st, files);
        if let Some(rows) = sanitize_components(st, "interaction callback", data) {
            msg["components"] = rows;
        }
        st.interactions[ri].original = Some(msg.clone());
        st.interactions[ri].original_files = files.to_vec();
        if st.interactions[ri].parent.is_some() {
            st.interactions[ri].result = Some(msg.clone());
        }
        if let Err(e) = check::<serenity::model::channel::Message>(&msg) {
            st.payload_error("interaction callback message", &e, &msg);
        }
        if kind == 4 && flags & EPHEMERAL == 0 && st.echo {
            st.echo_message(&msg);
        }
    } else if kind == 6 || kind == 7 {
        update_pressed_message(st, ri, kind, data);
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(super) fn webhook_message_route(
    st: &mut SimState,
    m: &str,
    token: &str,
    mid: &str,
    body: &Value,
    files: &[Upload],
) -> Response {
    let Some(press) = st.interactions.iter().position(|r| r.token == token) else {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    };
    // After a type 6 or 7 callback, a press's `@original` is the message it was pressed on.
    let ri = original_owner(st, press);
    let target = if mid == "@original" {
        st.interactions[ri].original.clone()
    } else {
        parse_id(mid).and_then(|id| {
            st.interactions[ri]
                .followups
                .iter()
                .find(|f| f["id"] == json!(id.to_string()))
                .cloned()
        })
    };
    let Some(mut msg) = target else {
        return discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    };
    match m {
        "GET" => checked::<serenity::model::channel::Message>(st, "GET webhook message", msg),
        "DELETE" => StatusCode::NO_CONTENT.into_response(),
        "PATCH" => {
            if let Some(c) = body["content"].as_str() {
                msg["content"] = json!(c);
            }
            if body["embeds"].is_array() {
                msg["embeds"] = Value::Array(sanitize_embeds(body));
            }
            if let Some(rows) = sanitize_components(st, "PATCH webhook message", body) {
                msg["components"] = rows;
            }
            check_attachment_refs(st, "PATCH webhook message", body, files);
            if !files.is_empty() {
                msg["attachments"] = attachments_json(st, files);
                if mid == "@original" {
                    st.interactions[ri].original_files = files.to_vec();
                }
            }
            if let Some(flags) = msg["flags"].as_u64() {
                msg["flags"] = json!(flags & !(1 << 7));
            }
            msg["edited_timestamp"] = json!(now_iso());
            if mid == "@original" {
                st.interactions[ri].original = Some(msg.clone());
                st.interactions[ri].original_edited = true;
                if press != ri {
                    st.interactions[press].result = Some(msg.clone());
                }
            } else if let Some(f) = st.interactions[ri]
                .followups
                .iter_mut()
                .find(|f| f["id"] == msg["id"])
            {
                *f = msg.clone();
            }
            checked::<serenity::model::channel::Message>(st, "PATCH webhook message", msg)
        }
        _ => not_found(),
    }
}

pub(super) fn followup(st: &mut SimState, token: &str, body: &Value, files: &[Upload]) -> Response {
    let Some(ri) = st.interactions.iter().position(|r| r.token == token) else {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    };
    if st.interactions[ri].callbacks.is_empty() {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    }
    let (channel_id, guild_id) = (st.interactions[ri].channel_id, st.interactions[ri].guild_id);
    let mid = st.next_id();
    let flags = body["flags"].as_u64().unwrap_or(0);
    let content = body["content"].as_str().unwrap_or("");
    let mut msg = st.bot_message_json(
        mid,
        channel_id,
        guild_id,
        content,
        sanitize_embeds(body),
        FOLLOWUP,
        flags,
    );
    if let Some(rows) = sanitize_components(st, "POST follow-up", body) {
        msg["components"] = rows;
    }
    check_attachment_refs(st, "POST follow-up", body, files);
    msg["attachments"] = attachments_json(st, files);
    if st.interactions[ri].followups.is_empty() {
        st.interactions[ri].followup_files = files.to_vec();
    }
    st.interactions[ri].followups.push(msg.clone());
    if flags & EPHEMERAL == 0 && st.echo {
        st.echo_message(&msg);
    }
    checked::<serenity::model::channel::Message>(st, "POST follow-up", msg)
}

/// Discord's attachment objects for the uploaded `files`.
fn attachments_json(st: &mut SimState, files: &[Upload]) -> Value {
    let list: Vec<Value> = files
        .iter()
        .map(|(name, bytes)| {
            let id = st.next_id();
            let url = format!("https://cdn.discordapp.com/attachments/0/{id}/{name}");
            json!({
                "id": id.to_string(),
                "filename": name,
                "size": bytes.len(),
                "url": url,
                "proxy_url": url,
                "content_type": if name.to_ascii_lowercase().ends_with(".png") { json!("image/png") } else { Value::Null },
            })
        })
        .collect();
    Value::Array(list)
}

/// An embed image or thumbnail `attachment://NAME` must name a file uploaded with
/// the same request (Discord shows nothing otherwise): recorded as a payload error.
fn check_attachment_refs(st: &mut SimState, what: &str, body: &Value, files: &[Upload]) {
    for e in body["embeds"].as_array().into_iter().flatten() {
        for key in ["image", "thumbnail"] {
            if let Some(name) = e[key]["url"]
                .as_str()
                .and_then(|u| u.strip_prefix("attachment://"))
            {
                if !files.iter().any(|(f, _)| f == name) {
                    st.payload_error(
                        what,
                        &format!("embed {key} attachment://{name} names no uploaded file"),
                        body,
                    );
                }
            }
        }
    }
}
