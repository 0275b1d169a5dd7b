//! Gateway sessions. Like Discord, the simulator accepts several live sessions for the
//! same shard (two bot processes with one token, e.g. during an overlapping redeploy):
//! each `IDENTIFY` creates a session with its own `session_id`, sequence numbers, resume
//! buffer and connection, and every dispatch goes to every live session. A session whose
//! connection dropped keeps buffering for a `RESUME` until it is invalidated or the resume
//! window passes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::payloads::validate_dispatch;
use super::state::{Outgoing, SimState};
use super::{DiscordSim, SessionInfo, HISTORY_LIMIT};

/// How long a session whose connection dropped stays resumable, unless
/// [`DiscordSim::set_resume_window`] says otherwise. Discord does not document its own.
pub(super) const DEFAULT_RESUME_WINDOW: Duration = Duration::from_secs(120);

pub(super) struct Conn {
    pub(super) id: u64,
    pub(super) tx: mpsc::UnboundedSender<Outgoing>,
}

pub(super) struct Session {
    pub(super) id: String,
    pub(super) number: usize,
    pub(super) seq: u64,
    pub(super) intents: u64,
    /// Every dispatch frame of this session (seq, event name, frame), for `RESUME` replay.
    pub(super) history: Vec<(u64, String, String)>,
    /// The websocket attached to this session, if any.
    pub(super) conn: Option<Conn>,
    /// When the websocket went away (the resume window counts from here).
    pub(super) detached_at: Option<Instant>,
    /// Dispatches written to a websocket, by event name.
    pub(super) received: BTreeMap<String, usize>,
    pub(super) resumes: usize,
    pub(super) replayed: usize,
    /// Dispatches are kept for a `RESUME` but not written, while the
    /// connection stays up (heartbeats answered): a session whose
    /// deliveries lag behind the other sessions'.
    pub(super) stalled: bool,
}

impl Session {
    /// Writes a frame to the attached websocket; false if there is none (or it is gone).
    pub(super) fn send(&mut self, t: &str, text: String) -> bool {
        let sent = self
            .conn
            .as_ref()
            .is_some_and(|c| c.tx.send(Outgoing::Text(text)).is_ok());
        if sent {
            *self.received.entry(t.to_owned()).or_default() += 1;
        }
        sent
    }

    /// Takes the websocket off the session (it stays resumable).
    pub(super) fn detach(&mut self) -> Option<Conn> {
        let conn = self.conn.take();
        if conn.is_some() {
            self.detached_at = Some(Instant::now());
        }
        conn
    }

    fn label(&self) -> String {
        let conn = self.conn.as_ref().map_or(0, |c| c.id);
        format!("GW#{conn} S{}", self.number)
    }

    fn info(&self) -> SessionInfo {
        SessionInfo {
            id: self.id.clone(),
            number: self.number,
            connected: self.conn.is_some(),
            intents: self.intents,
            seq: self.seq,
            received: self.received.clone(),
            resumes: self.resumes,
            replayed: self.replayed,
        }
    }
}

impl SimState {
    /// Sends (or buffers for `RESUME`) one dispatch on every live session; returns how many
    /// sessions it went to (0 without any session, or when none has the intent).
    pub(super) fn dispatch(&mut self, t: &str, d: &Value, intent: Option<(u64, &str)>) -> usize {
        self.dispatch_each(t, intent, |_| d.clone())
    }

    /// As [`SimState::dispatch`], with the payload built per session from its intents.
    pub(super) fn dispatch_each(
        &mut self,
        t: &str,
        intent: Option<(u64, &str)>,
        build: impl Fn(u64) -> Value,
    ) -> usize {
        self.expire_sessions();
        if self.sessions.is_empty() {
            self.log_line(format!(
                "dropped {t}: no gateway session (bot not connected yet)"
            ));
            return 0;
        }
        let mut validated: Vec<Value> = Vec::new();
        let mut delivered = 0;
        for si in 0..self.sessions.len() {
            let s = &self.sessions[si];
            if let Some((bit, name)) = intent {
                if s.intents & bit == 0 {
                    let line = format!(
                        "S{} skipped {t}: bot did not request intent {name}",
                        s.number
                    );
                    self.log_line(line);
                    continue;
                }
            }
            let d = build(s.intents);
            if !validated.contains(&d) {
                self.validate(t, &d);
                validated.push(d.clone());
            }
            self.dispatch_on(si, t, d);
            delivered += 1;
        }
        delivered
    }

    /// Sends (or buffers) one dispatch on session `si` only, validated first.
    pub(super) fn dispatch_to(&mut self, si: usize, t: &str, d: Value) {
        self.validate(t, &d);
        self.dispatch_on(si, t, d);
    }

    fn validate(&mut self, t: &str, d: &Value) {
        let frame = json!({ "op": 0, "s": 1, "t": t, "d": d });
        if let Err(e) = validate_dispatch(t, &frame) {
            self.payload_error(&format!("dispatch {t}"), &e, &frame);
        }
    }

    fn dispatch_on(&mut self, si: usize, t: &str, d: Value) {
        let summary = dispatch_summary(t, &d);
        let s = &mut self.sessions[si];
        s.seq += 1;
        let seq = s.seq;
        let mut frame = Map::new();
        frame.insert("op".into(), json!(0));
        frame.insert("s".into(), json!(seq));
        frame.insert("t".into(), json!(t));
        frame.insert("d".into(), d);
        let text = Value::Object(frame).to_string();
        s.history.push((seq, t.to_owned(), text.clone()));
        if s.history.len() > HISTORY_LIMIT {
            s.history.drain(..HISTORY_LIMIT / 10);
        }
        let line = if s.stalled {
            format!(
                "S{} held {t} s={seq} {summary} (stalled; replayed on RESUME)",
                s.number
            )
        } else if s.send(t, text) {
            format!("{} -> {t} s={seq} {summary}", s.label())
        } else {
            format!(
                "S{} buffered {t} s={seq} {summary} (no client attached; replayed on RESUME)",
                s.number
            )
        };
        self.log_line(line);
    }

    /// Forgets sessions left without a connection for longer than the resume window.
    pub(super) fn expire_sessions(&mut self) {
        let window = self.resume_window;
        let mut expired = Vec::new();
        self.sessions.retain(|s| {
            let keep = s.conn.is_some() || s.detached_at.is_none_or(|at| at.elapsed() <= window);
            if !keep {
                expired.push(format!(
                    "S{} session {} expired: not resumed within {window:?}",
                    s.number, s.id
                ));
            }
            keep
        });
        for line in expired {
            self.log_line(line);
        }
    }

    /// The websocket `conn_id` went away: its session (if any) waits for a `RESUME`, or
    /// ends when `invalidate` (the client closed with 1000/1001, which Discord documents as
    /// invalidating the session).
    pub(super) fn conn_gone(&mut self, conn_id: u64, invalidate: bool) {
        let Some(si) = self.session_of_conn(conn_id) else {
            return;
        };
        if invalidate {
            let s = self.sessions.remove(si);
            self.log_line(format!(
                "S{} session {} ended: the client closed normally",
                s.number, s.id
            ));
        } else {
            self.sessions[si].detach();
        }
    }

    pub(super) fn session_of_conn(&self, conn_id: u64) -> Option<usize> {
        self.sessions
            .iter()
            .position(|s| s.conn.as_ref().is_some_and(|c| c.id == conn_id))
    }

    /// Closes the websocket of session `si` (if attached) with `code`; the session stays.
    fn close_conn(&mut self, si: usize, code: u16, reason: &'static str) {
        if let Some(conn) = self.sessions[si].detach() {
            let _ = conn.tx.send(Outgoing::Close(code, reason));
            let number = self.sessions[si].number;
            self.log_line(format!(
                "GW#{} S{number} closed by simulator ({code}, {reason})",
                conn.id
            ));
        }
    }

    /// Forgets session `si` and closes its websocket with 4009 (session timed out).
    fn invalidate(&mut self, si: usize) {
        self.close_conn(si, 4009, "simulator: session timed out");
        let s = self.sessions.remove(si);
        self.log_line(format!("S{} session {} invalidated", s.number, s.id));
    }
}

impl DiscordSim {
    /// The live sessions, oldest first: connected ones and those waiting for a `RESUME`.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut st = self.inner.lock();
        st.expire_sessions();
        st.sessions.iter().map(Session::info).collect()
    }

    /// The live session with this `session_id`.
    pub fn session(&self, id: &str) -> Option<SessionInfo> {
        self.sessions().into_iter().find(|s| s.id == id)
    }

    /// Waits until at least `n` sessions have a websocket attached; returns
    /// [`DiscordSim::sessions`].
    ///
    /// # Panics
    /// On timeout, with the simulator log.
    pub async fn wait_sessions(&self, n: usize, timeout: Duration) -> Vec<SessionInfo> {
        let ok = self
            .wait_until(timeout, |st| {
                st.sessions.iter().filter(|s| s.conn.is_some()).count() >= n
            })
            .await;
        assert!(
            ok,
            "discord sim: not {n} connected sessions within {timeout:?} (have {:?}).\n{}",
            self.sessions(),
            self.dump()
        );
        self.sessions()
    }

    /// Closes the websocket of session `id` with 4000; its client resumes it (dispatches
    /// meanwhile are buffered for that session only). False if no such session is connected.
    pub fn disconnect_session(&self, id: &str) -> bool {
        let mut st = self.inner.lock();
        let found = st
            .sessions
            .iter()
            .position(|s| s.id == id && s.conn.is_some());
        if let Some(si) = found {
            st.close_conn(si, 4000, "simulator: disconnect");
        }
        drop(st);
        self.inner.bump();
        found.is_some()
    }

    /// Stalls session `id`: its connection and heartbeats go on, its
    /// dispatches are held (kept for a `RESUME`), as when one process's
    /// deliveries lag behind another's. False if there is no such session.
    pub fn stall_session(&self, id: &str) -> bool {
        let mut st = self.inner.lock();
        let found = st.sessions.iter_mut().find(|s| s.id == id);
        let stalled = found.map(|s| s.stalled = true).is_some();
        if stalled {
            st.log_line(format!("session {id} stalled"));
        }
        stalled
    }

    /// Ends the stall of session `id` as a shard would notice it: its
    /// websocket is closed with 4000, the client resumes and gets every
    /// dispatch it was not sent replayed. False if it is not connected.
    pub fn resume_stalled_session(&self, id: &str) -> bool {
        if let Some(s) = self.inner.lock().sessions.iter_mut().find(|s| s.id == id) {
            s.stalled = false;
        }
        self.disconnect_session(id)
    }

    /// Forgets session `id` and closes its websocket with 4009, so its client must
    /// `IDENTIFY` again. False if there is no such session.
    #[allow(
        dead_code,
        reason = "simulator API for overlapping redeploys (one of two processes loses its session); kept whole rather than trimmed to today's tests"
    )]
    pub fn invalidate_session_by_id(&self, id: &str) -> bool {
        let mut st = self.inner.lock();
        let found = st.sessions.iter().position(|s| s.id == id);
        if let Some(si) = found {
            st.invalidate(si);
        }
        drop(st);
        self.inner.bump();
        found.is_some()
    }

    /// How long a session whose websocket dropped stays resumable (default 120 s; Discord
    /// does not document its own). Afterwards it is forgotten and a `RESUME` of it gets
    /// `INVALID_SESSION`.
    pub fn set_resume_window(&self, window: Duration) {
        self.inner.lock().resume_window = window;
    }

    /// Closes every session's websocket with code 4000; the clients resume their sessions
    /// (dispatches sent meanwhile are replayed). No-op without a connection.
    pub fn disconnect_client(&self) {
        let mut st = self.inner.lock();
        for si in 0..st.sessions.len() {
            st.close_conn(si, 4000, "simulator: disconnect");
        }
        drop(st);
        self.inner.bump();
    }

    /// Forgets every session and closes their websockets with 4009 (session timed out), so
    /// serenity must `IDENTIFY` again (it waits a few seconds before doing so).
    pub fn invalidate_session(&self) {
        let mut st = self.inner.lock();
        while !st.sessions.is_empty() {
            st.invalidate(0);
        }
        drop(st);
        self.inner.bump();
    }

    /// Whether any session has a websocket attached right now.
    #[allow(
        dead_code,
        reason = "simulator API for the features under way (options, embeds, components); kept whole rather than trimmed to today's tests"
    )]
    pub fn is_client_connected(&self) -> bool {
        self.inner.lock().sessions.iter().any(|s| s.conn.is_some())
    }
}

fn dispatch_summary(t: &str, d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or("null").to_owned();
    match t {
        "GUILD_CREATE" => format!(
            "guild={} voice_states={} members={}",
            s("id"),
            d["voice_states"].as_array().map_or(0, Vec::len),
            d["members"].as_array().map_or(0, Vec::len)
        ),
        "VOICE_STATE_UPDATE" => format!(
            "guild={} user={} channel={} self_video={}",
            s("guild_id"),
            s("user_id"),
            s("channel_id"),
            d["self_video"]
        ),
        "MESSAGE_CREATE" => format!(
            "channel={} author={} bot={} webhook={}",
            s("channel_id"),
            d["author"]["id"].as_str().unwrap_or(""),
            d["author"]["bot"],
            d.get("webhook_id").is_some()
        ),
        "INTERACTION_CREATE" if d["type"] == 3 => format!(
            "id={} button {} user={}",
            d["id"].as_str().unwrap_or(""),
            d["data"]["custom_id"].as_str().unwrap_or(""),
            d["member"]["user"]["id"].as_str().unwrap_or("")
        ),
        "INTERACTION_CREATE" => format!(
            "/{} user={}",
            d["data"]["name"].as_str().unwrap_or(""),
            d["member"]["user"]["id"].as_str().unwrap_or("")
        ),
        _ => String::new(),
    }
}
