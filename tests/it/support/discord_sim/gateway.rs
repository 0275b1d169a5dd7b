//! Gateway: the websocket, its frames, `IDENTIFY` (a new session each time), `RESUME`
//! (of the session it names), and outages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::payloads::ready_json;
use super::sessions::{Conn, Session};
use super::state::{Inner, Outgoing, SimState};
use super::{intents, DiscordSim, BOT_TOKEN, HEARTBEAT_INTERVAL_MS};

pub(super) async fn gateway_upgrade(
    State(inner): State<Arc<Inner>>,
    ws: WebSocketUpgrade,
) -> Response {
    {
        let mut st = inner.lock();
        if let Some(until) = st.refuse_gateway_until {
            if Instant::now() < until {
                st.refused_upgrades += 1;
                st.log_line("GW upgrade refused (503): gateway outage".to_owned());
                drop(st);
                inner.bump();
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "gateway outage (simulator)",
                )
                    .into_response();
            }
            st.refuse_gateway_until = None;
            st.log_line("gateway outage over: upgrades accepted again".to_owned());
        }
    }
    ws.on_upgrade(move |socket| gateway_socket(inner, socket))
}

impl DiscordSim {
    /// A gateway outage: drops every session's websocket without a close frame (as a
    /// network failure does) and refuses websocket upgrades with 503 for `refuse_for`;
    /// the HTTP API (`GET /gateway/bot` included) keeps answering. The sessions are kept:
    /// voice changes meanwhile are buffered for a `RESUME` and are in the `GUILD_CREATE`
    /// of a new `IDENTIFY` (serenity 0.12 re-identifies once a resume attempt fails:
    /// about 5 s after the drop, then every 5 s until a connection is accepted).
    pub fn gateway_outage(&self, refuse_for: Duration) {
        let mut st = self.inner.lock();
        st.refuse_gateway_until = Some(Instant::now() + refuse_for);
        for si in 0..st.sessions.len() {
            if let Some(conn) = st.sessions[si].detach() {
                let _ = conn.tx.send(Outgoing::Drop);
                let number = st.sessions[si].number;
                st.log_line(format!(
                    "GW#{} S{number} dropped by simulator (outage: upgrades refused for {refuse_for:?})",
                    conn.id
                ));
            }
        }
        drop(st);
        self.inner.bump();
    }

    /// Refuses new websocket upgrades with 503 for `refuse_for`, leaving the
    /// connected sessions alone: a process starting now cannot connect yet
    /// (serenity tries again about every 5 s).
    pub fn refuse_new_connections(&self, refuse_for: Duration) {
        self.inner.lock().refuse_gateway_until = Some(Instant::now() + refuse_for);
    }

    /// Websocket upgrades refused so far by [`DiscordSim::gateway_outage`].
    pub fn refused_upgrades(&self) -> usize {
        self.inner.lock().refused_upgrades
    }
}

async fn gateway_socket(inner: Arc<Inner>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let conn_id = {
        let mut st = inner.lock();
        st.next_conn_id += 1;
        let id = st.next_conn_id;
        st.log_line(format!("GW#{id} connected; -> HELLO"));
        id
    };
    let hello = json!({ "op": 10, "s": null, "t": null, "d": { "heartbeat_interval": HEARTBEAT_INTERVAL_MS } });
    let _ = tx.send(Outgoing::Text(hello.to_string()));
    let dropped = CancellationToken::new();
    let drop_now = dropped.clone();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Outgoing::Drop => {
                    drop_now.cancel();
                    break;
                }
                Outgoing::Text(text) => {
                    if sink.send(WsMessage::Text(text)).await.is_err() {
                        break;
                    }
                }
                Outgoing::Close(code, reason) => {
                    let _ = sink
                        .send(WsMessage::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
            }
        }
    });
    // A close frame from the client with 1000/1001 ends its session (Discord: the session
    // is invalidated and the bot appears offline); any other end leaves it resumable.
    let mut closed_normally = false;
    loop {
        let msg = tokio::select! {
            () = inner.cancel.cancelled() => {
                let _ = tx.send(Outgoing::Close(1001, "simulator shutting down"));
                break;
            }
            // Both halves of the socket are dropped below: the TCP connection
            // closes without a close frame.
            () = dropped.cancelled() => break,
            m = stream.next() => m,
        };
        match msg {
            Some(Ok(WsMessage::Text(text))) => {
                gateway_frame(&inner, conn_id, &tx, &text);
                inner.bump();
            }
            Some(Ok(WsMessage::Binary(b))) => inner.lock().log_line(format!(
                "GW#{conn_id} <- unexpected binary frame ({} bytes)",
                b.len()
            )),
            Some(Ok(WsMessage::Close(frame))) => {
                let code = frame.map(|f| f.code);
                closed_normally = matches!(code, Some(1000 | 1001));
                inner
                    .lock()
                    .log_line(format!("GW#{conn_id} <- close {code:?}"));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                inner.lock().log_line(format!("GW#{conn_id} error: {e}"));
                break;
            }
            None => break,
        }
    }
    {
        let mut st = inner.lock();
        st.log_line(format!("GW#{conn_id} disconnected"));
        st.conn_gone(conn_id, closed_normally);
    }
    inner.bump();
    drop(tx);
    // Let a queued close frame go out, then stop.
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

fn gateway_frame(inner: &Inner, conn_id: u64, tx: &mpsc::UnboundedSender<Outgoing>, text: &str) {
    let mut st = inner.lock();
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        st.log_line(format!("GW#{conn_id} <- unparsable frame: {text}"));
        return;
    };
    let d = &v["d"];
    match v["op"].as_u64() {
        Some(1) => {
            let _ = tx.send(Outgoing::Text(
                json!({ "op": 11, "s": null, "t": null, "d": null }).to_string(),
            ));
            st.log_line(format!("GW#{conn_id} <- HEARTBEAT {d}; -> ACK"));
        }
        Some(2) => identify(&mut st, conn_id, tx, d),
        Some(6) => resume(&mut st, conn_id, tx, d),
        Some(3) => st.log_line(format!("GW#{conn_id} <- PRESENCE_UPDATE {d}")),
        Some(4) => st.log_line(format!(
            "GW#{conn_id} <- VOICE_STATE_UPDATE (bot joining voice; ignored) {d}"
        )),
        Some(8) => st.log_line(format!(
            "GW#{conn_id} <- REQUEST_GUILD_MEMBERS (ignored) {d}"
        )),
        other => st.log_line(format!("GW#{conn_id} <- unknown op {other:?}: {text}")),
    }
}

pub(super) fn token_ok(token: &str) -> bool {
    token.trim_start_matches("Bot ") == BOT_TOKEN
}

fn identify(st: &mut SimState, conn_id: u64, tx: &mpsc::UnboundedSender<Outgoing>, d: &Value) {
    let intents_bits = d["intents"].as_u64().unwrap_or(0);
    st.log_line(format!(
        "GW#{conn_id} <- IDENTIFY intents={intents_bits:#x} ({})",
        intent_names(intents_bits)
    ));
    if !token_ok(d["token"].as_str().unwrap_or("")) {
        let _ = tx.send(Outgoing::Close(4004, "Authentication failed."));
        st.log_line(format!("GW#{conn_id} bad token; closed 4004"));
        return;
    }
    let session_id = format!(
        "{:032x}",
        u128::from(st.next_id()) << 16 | u128::from(conn_id)
    );
    st.expire_sessions();
    if let Some(si) = st.session_of_conn(conn_id) {
        // Discord would close with 4005 (already authenticated); serenity never does this.
        st.sessions[si].detach();
        let line = format!("GW#{conn_id} IDENTIFY again: its previous session is detached");
        st.log_line(line);
    }
    st.identifies += 1;
    let number = st.identifies;
    st.sessions.push(Session {
        id: session_id.clone(),
        number,
        seq: 0,
        intents: intents_bits,
        history: Vec::new(),
        conn: Some(Conn {
            id: conn_id,
            tx: tx.clone(),
        }),
        detached_at: None,
        received: BTreeMap::new(),
        resumes: 0,
        replayed: 0,
        stalled: false,
    });
    let si = st.sessions.len() - 1;
    let live = st.sessions.len();
    st.log_line(format!(
        "GW#{conn_id} S{number} new session {session_id} ({live} live)"
    ));
    let shard = if d["shard"].is_array() {
        d["shard"].clone()
    } else {
        json!([0, 1])
    };
    let ready = ready_json(st, &session_id, &shard);
    st.dispatch_to(si, "READY", ready);
    for gi in 0..st.guilds.len() {
        let g = st.guild_create_json(gi, intents_bits);
        st.dispatch_to(si, "GUILD_CREATE", g);
    }
    st.last_intents = Some(intents_bits);
}

fn resume(st: &mut SimState, conn_id: u64, tx: &mpsc::UnboundedSender<Outgoing>, d: &Value) {
    let sid = d["session_id"].as_str().unwrap_or("");
    let seq = d["seq"].as_u64().unwrap_or(0);
    st.log_line(format!("GW#{conn_id} <- RESUME session={sid} seq={seq}"));
    st.expire_sessions();
    let found = st.sessions.iter().position(|s| s.id == sid);
    let replay = match found.map(|si| &st.sessions[si]) {
        Some(s) if token_ok(d["token"].as_str().unwrap_or("")) && seq <= s.seq => {
            let covered = s
                .history
                .first()
                .map_or(seq == s.seq, |(first, _, _)| *first <= seq + 1);
            covered.then(|| {
                s.history
                    .iter()
                    .filter(|(n, _, _)| *n > seq)
                    .map(|(_, t, f)| (t.clone(), f.clone()))
                    .collect::<Vec<_>>()
            })
        }
        _ => None,
    };
    let (Some(si), Some(replay)) = (found, replay) else {
        let _ = tx.send(Outgoing::Text(
            json!({ "op": 9, "s": null, "t": null, "d": false }).to_string(),
        ));
        st.log_line(format!(
            "GW#{conn_id} cannot resume; -> INVALID_SESSION(false)"
        ));
        return;
    };
    if let Some(other) = st.session_of_conn(conn_id).filter(|&o| o != si) {
        st.sessions[other].detach();
    }
    let s = &mut st.sessions[si];
    let old = s.conn.replace(Conn {
        id: conn_id,
        tx: tx.clone(),
    });
    s.detached_at = None;
    let n = replay.len();
    for (t, frame) in replay {
        s.send(&t, frame);
    }
    s.resumes += 1;
    s.replayed += n;
    let number = s.number;
    if let Some(old) = old.filter(|c| c.id != conn_id) {
        let line = format!("GW#{} S{number} detached: resumed on GW#{conn_id}", old.id);
        st.log_line(line);
    }
    st.log_line(format!(
        "GW#{conn_id} S{number} resumed; replayed {n} missed dispatches"
    ));
    st.dispatch_to(si, "RESUMED", json!({ "_trace": ["discord-sim"] }));
    st.resumes += 1;
}

fn intent_names(bits: u64) -> String {
    let names = [
        (intents::GUILDS, "GUILDS"),
        (intents::GUILD_MEMBERS, "GUILD_MEMBERS"),
        (intents::GUILD_VOICE_STATES, "GUILD_VOICE_STATES"),
        (intents::GUILD_MESSAGES, "GUILD_MESSAGES"),
        (intents::DIRECT_MESSAGES, "DIRECT_MESSAGES"),
        (intents::MESSAGE_CONTENT, "MESSAGE_CONTENT"),
    ];
    let known: Vec<&str> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    known.join("|")
}
