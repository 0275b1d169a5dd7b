//! Message components: the action rows of buttons the bot puts on its messages (kept as
//! Discord echoes them back), and pressing a button: an `INTERACTION_CREATE` of type 3
//! (`MESSAGE_COMPONENT`) carrying the message the button is on, whose answer the tests
//! read ([`PressReply`]): type 7 (`UPDATE_MESSAGE`) edits that message at once, type 6
//! (`DEFERRED_UPDATE_MESSAGE`) lets a later edit of `@original` (with the press's token)
//! edit it, types 4 and 5 answer with a new message, as on Discord.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::interactions::message_text;
use super::payloads::{now_iso, sanitize_embeds};
use super::state::{InteractionRecord, SimState};
use super::{DiscordSim, EPHEMERAL};

/// One button of a message ([`buttons`]), as Discord shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimButton {
    /// `None` for a link button.
    pub custom_id: Option<String>,
    pub label: Option<String>,
    /// A unicode emoji's text, or a custom emoji's name.
    pub emoji: Option<String>,
    /// 1 primary, 2 secondary, 3 success, 4 danger, 5 link.
    pub style: u64,
    pub disabled: bool,
}

/// Every button of every action row of `message` (a message or a message body), in order.
pub fn buttons(message: &Value) -> Vec<SimButton> {
    let mut out = Vec::new();
    for row in message["components"].as_array().into_iter().flatten() {
        for c in row["components"].as_array().into_iter().flatten() {
            if c["type"].as_u64() != Some(2) {
                continue;
            }
            let text = |v: &Value| v.as_str().map(str::to_owned);
            out.push(SimButton {
                custom_id: text(&c["custom_id"]),
                label: text(&c["label"]),
                emoji: text(&c["emoji"]["name"]),
                style: c["style"].as_u64().unwrap_or(0),
                disabled: c["disabled"].as_bool().unwrap_or(false),
            });
        }
    }
    out
}

/// The answer to a button press ([`DiscordSim::press_button`]).
#[allow(
    dead_code,
    reason = "simulator API for the pagers (/history, /leaderboard); kept whole rather than trimmed to today's tests"
)]
#[derive(Clone, Debug)]
pub struct PressReply {
    /// Type of the press's accepted callback: 7 update, 6 deferred update, 4 or 5 a new
    /// message.
    pub callback_type: u64,
    /// The answer is a new message only the presser sees (type 4 or 5 with EPHEMERAL).
    pub ephemeral: bool,
    /// The resulting message's content and embed text, as in `CommandReply::text`.
    pub text: String,
    /// The resulting message: the pressed message as updated (types 6 and 7), or the new
    /// message (types 4 and 5).
    pub message: Value,
}

impl PressReply {
    /// The buttons of the resulting message.
    pub fn buttons(&self) -> Vec<SimButton> {
        buttons(&self.message)
    }
}

/// The action rows of a message body as Discord stores them (`None`: the body does not
/// set `components`). A row that is not type 1, a button without a type 2, a custom id
/// longer than 100 characters or used twice in the message, a row of more than five
/// buttons: payload errors, as Discord refuses them.
pub(super) fn sanitize_components(st: &mut SimState, what: &str, body: &Value) -> Option<Value> {
    let rows = body.get("components")?.as_array()?;
    let mut out = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for row in rows {
        let items = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"].as_u64() != Some(1) || items.is_empty() || items.len() > 5 {
            st.payload_error(
                what,
                "an action row must be type 1 with 1 to 5 components",
                row,
            );
        }
        let mut kept = Vec::new();
        for c in &items {
            if c["type"].as_u64() != Some(2) {
                st.payload_error(what, "only buttons are simulated", c);
                continue;
            }
            let mut b = Map::new();
            for key in ["type", "style", "custom_id", "label", "url", "disabled"] {
                if !c[key].is_null() {
                    b.insert(key.into(), c[key].clone());
                }
            }
            if let Some(e) = c.get("emoji") {
                b.insert("emoji".into(), json!({"id": e["id"], "name": e["name"]}));
            }
            if let Some(id) = c["custom_id"].as_str() {
                if id.len() > 100 || seen.iter().any(|s| s == id) {
                    st.payload_error(what, "custom_id over 100 characters or not unique", c);
                }
                seen.push(id.to_owned());
            }
            kept.push(Value::Object(b));
        }
        out.push(json!({ "type": 1, "components": kept }));
    }
    Some(Value::Array(out))
}

/// The record whose `@original` a press's token edits: the pressed message's interaction
/// once the press was answered with type 6 or 7, else the press itself.
pub(super) fn original_owner(st: &SimState, ri: usize) -> usize {
    let rec = &st.interactions[ri];
    let updates = rec
        .callbacks
        .first()
        .and_then(|c| c["type"].as_u64())
        .is_some_and(|t| t == 6 || t == 7);
    match rec.parent {
        Some(parent) if updates => st
            .interactions
            .iter()
            .position(|r| r.id == parent)
            .unwrap_or(ri),
        _ => ri,
    }
}

/// A type 6 or 7 callback to press `ri`: type 7 edits the pressed message now (content,
/// embeds and components it sets); type 6 leaves it for an edit of `@original`. Either
/// on anything but a press is a payload error (Discord answers 400).
pub(super) fn update_pressed_message(st: &mut SimState, ri: usize, kind: u64, data: &Value) {
    let owner = original_owner(st, ri);
    if owner == ri {
        let body = json!({ "type": kind });
        st.payload_error(
            "interaction callback",
            "callback type 6/7 answers only a message component interaction",
            &body,
        );
        return;
    }
    if kind != 7 {
        return;
    }
    let Some(mut msg) = st.interactions[owner].original.clone() else {
        return;
    };
    if let Some(c) = data["content"].as_str() {
        msg["content"] = json!(c);
    }
    if data["embeds"].is_array() {
        msg["embeds"] = Value::Array(sanitize_embeds(data));
    }
    if let Some(rows) = sanitize_components(st, "UPDATE_MESSAGE callback", data) {
        msg["components"] = rows;
    }
    msg["edited_timestamp"] = json!(now_iso());
    if let Err(e) = super::payloads::check::<serenity::model::channel::Message>(&msg) {
        st.payload_error("UPDATE_MESSAGE callback message", &e, &msg);
    }
    st.interactions[owner].original = Some(msg.clone());
    st.interactions[ri].result = Some(msg);
}

fn press_reply(rec: &InteractionRecord) -> Option<PressReply> {
    let first = rec.callbacks.first()?;
    let callback_type = first["type"].as_u64().unwrap_or(0);
    let message = rec.result.clone()?;
    let flags = message["flags"].as_u64().unwrap_or(0);
    Some(PressReply {
        callback_type,
        ephemeral: matches!(callback_type, 4 | 5) && flags & EPHEMERAL != 0,
        text: message_text(&message),
        message,
    })
}

impl DiscordSim {
    /// The message interaction `id` answered with (`@original`), as it is now: after every
    /// edit and every update by a button press. `None` before the answer.
    pub fn original_message(&self, id: u64) -> Option<Value> {
        let st = self.inner.lock();
        st.interactions
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.original.clone())
    }

    /// The buttons on interaction `id`'s `@original` message now (empty before the answer).
    pub fn buttons_of(&self, id: u64) -> Vec<SimButton> {
        self.original_message(id)
            .map(|m| buttons(&m))
            .unwrap_or_default()
    }

    /// `user` presses the button `custom_id` on the message interaction `id` answered
    /// with: dispatches `INTERACTION_CREATE` type 3 (`data: {custom_id, component_type:
    /// 2}`, the message as it is now, `user`'s member) to every live session, without
    /// waiting; returns the press's interaction id (for [`DiscordSim::wait_press_reply`]
    /// and `interaction_callbacks`).
    ///
    /// # Errors
    /// No such message or button, the button is disabled (Discord would not let anyone
    /// press it), or no gateway session to deliver the press to.
    pub fn press_button(&self, id: u64, user: u64, custom_id: &str) -> Result<u64, String> {
        let press = {
            let mut st = self.inner.lock();
            let rec = st
                .interactions
                .iter()
                .find(|r| r.id == id)
                .ok_or_else(|| format!("no interaction {id}"))?;
            let message = rec
                .original
                .clone()
                .ok_or_else(|| format!("interaction {id} has no message yet"))?;
            let (channel, guild) = (rec.channel_id, rec.guild_id);
            let name = format!("{} button {custom_id}", rec.name);
            match buttons(&message)
                .iter()
                .find(|b| b.custom_id.as_deref() == Some(custom_id))
            {
                None => return Err(format!("no button {custom_id:?} on {message}")),
                Some(b) if b.disabled => return Err(format!("button {custom_id:?} is disabled")),
                Some(_) => {}
            }
            let gi = guild
                .and_then(|g| st.guild_index(g))
                .ok_or_else(|| "presses are simulated in guilds only".to_owned())?;
            let press = st.next_id();
            let token = format!("sim-interaction-token-{press}");
            let data = json!({ "custom_id": custom_id, "component_type": 2 });
            let (mut payload, _, token) =
                st.interaction_envelope(gi, channel, user, (press, &token), 3, &data);
            payload["message"] = message;
            let mut rec =
                InteractionRecord::new(press, token, name, channel, guild, payload.clone());
            rec.parent = Some(id);
            st.interactions.push(rec);
            if st.dispatch("INTERACTION_CREATE", &payload, None) == 0 {
                return Err(format!(
                    "no gateway session to deliver the press to\n{}",
                    st.dump()
                ));
            }
            press
        };
        self.inner.bump();
        Ok(press)
    }

    /// Waits for the bot's answer to button press `press` ([`DiscordSim::press_button`]).
    ///
    /// # Errors
    /// No answer within `timeout` (the message includes the simulator log).
    pub async fn wait_press_reply(
        &self,
        press: u64,
        timeout: Duration,
    ) -> Result<PressReply, String> {
        let mut reply = None;
        let ok = self
            .wait_until(timeout, |st| {
                reply = st
                    .interactions
                    .iter()
                    .find(|r| r.id == press)
                    .and_then(press_reply);
                reply.is_some()
            })
            .await;
        match reply {
            Some(r) if ok => Ok(r),
            _ => Err(format!(
                "no answer to button press {press} within {timeout:?}\n{}",
                self.dump()
            )),
        }
    }

    /// [`DiscordSim::press_button`], then [`DiscordSim::wait_press_reply`].
    ///
    /// # Errors
    /// As those two.
    pub async fn press(
        &self,
        id: u64,
        user: u64,
        custom_id: &str,
        timeout: Duration,
    ) -> Result<PressReply, String> {
        let press = self.press_button(id, user, custom_id)?;
        self.wait_press_reply(press, timeout).await
    }

    /// Refuses a press's first callback arriving more than `window` after the press was
    /// dispatched with 404 / 10062 "Unknown interaction", as Discord does after 3 s
    /// (`None`, the default: any time, so a loaded test machine is not a failure).
    pub fn set_press_window(&self, window: Option<Duration>) {
        self.inner.lock().press_window = window;
    }

    /// Delivers interaction `id`'s `INTERACTION_CREATE` again, unchanged, to every live
    /// session (a duplicate delivery); its callbacks keep being recorded on the same
    /// interaction, and only the first is accepted.
    ///
    /// # Errors
    /// Unknown interaction, or no gateway session.
    pub fn redeliver_interaction(&self, id: u64) -> Result<(), String> {
        {
            let mut st = self.inner.lock();
            let payload = st
                .interactions
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.payload.clone())
                .ok_or_else(|| format!("no interaction {id}"))?;
            if st.dispatch("INTERACTION_CREATE", &payload, None) == 0 {
                return Err("no gateway session to deliver to".to_owned());
            }
        }
        self.inner.bump();
        Ok(())
    }
}
