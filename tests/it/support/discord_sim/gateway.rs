//! Gateway: the websocket, its frames, `IDENTIFY`, `RESUME`, and outages.

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
use super::state::{Conn, Inner, Outgoing, Session, SimState};
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
    /// A gateway outage: drops the current websocket without a close frame (as a
    /// network failure does) and refuses websocket upgrades with 503 for `refuse_for`;
    /// the HTTP API (`GET /gateway/bot` included) keeps answering. The session is kept:
    /// voice changes meanwhile are buffered for a `RESUME` and are in the `GUILD_CREATE`
    /// of a new `IDENTIFY` (serenity 0.12 re-identifies once a resume attempt fails:
    /// about 5 s after the drop, then every 5 s until a connection is accepted).
    pub fn gateway_outage(&self, refuse_for: Duration) {
        let mut st = self.inner.lock();
        st.refuse_gateway_until = Some(Instant::now() + refuse_for);
        if let Some(conn) = st.conn.take() {
            let _ = conn.tx.send(Outgoing::Drop);
            st.log_line(format!(
                "GW#{} dropped by simulator (outage: upgrades refused for {refuse_for:?})",
                conn.id
            ));
        }
        drop(st);
        self.inner.bump();
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
                inner
                    .lock()
                    .log_line(format!("GW#{conn_id} <- close {:?}", frame.map(|f| f.code)));
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
        if st.conn.as_ref().is_some_and(|c| c.id == conn_id) {
            st.conn = None;
        }
        st.log_line(format!("GW#{conn_id} disconnected"));
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
    st.session = Some(Session {
        id: session_id.clone(),
        seq: 0,
        intents: intents_bits,
        history: Vec::new(),
    });
    if let Some(old) = st.conn.replace(Conn {
        id: conn_id,
        tx: tx.clone(),
    }) {
        if old.id != conn_id {
            st.log_line(format!(
                "GW#{} detached: GW#{conn_id} identified as a new session",
                old.id
            ));
        }
    }
    let shard = if d["shard"].is_array() {
        d["shard"].clone()
    } else {
        json!([0, 1])
    };
    let ready = ready_json(st, &session_id, &shard);
    st.dispatch("READY", ready, None);
    for gi in 0..st.guilds.len() {
        let g = st.guild_create_json(gi, intents_bits);
        st.dispatch("GUILD_CREATE", g, None);
    }
    st.identifies += 1;
    st.last_intents = Some(intents_bits);
}

fn resume(st: &mut SimState, conn_id: u64, tx: &mpsc::UnboundedSender<Outgoing>, d: &Value) {
    let sid = d["session_id"].as_str().unwrap_or("");
    let seq = d["seq"].as_u64().unwrap_or(0);
    st.log_line(format!("GW#{conn_id} <- RESUME session={sid} seq={seq}"));
    let replay = match &st.session {
        Some(s) if s.id == sid && token_ok(d["token"].as_str().unwrap_or("")) && seq <= s.seq => {
            let covered = s
                .history
                .first()
                .map_or(seq == s.seq, |(first, _)| *first <= seq + 1);
            covered.then(|| {
                s.history
                    .iter()
                    .filter(|(n, _)| *n > seq)
                    .map(|(_, f)| f.clone())
                    .collect::<Vec<_>>()
            })
        }
        _ => None,
    };
    let Some(replay) = replay else {
        let _ = tx.send(Outgoing::Text(
            json!({ "op": 9, "s": null, "t": null, "d": false }).to_string(),
        ));
        st.log_line(format!(
            "GW#{conn_id} cannot resume; -> INVALID_SESSION(false)"
        ));
        return;
    };
    st.conn = Some(Conn {
        id: conn_id,
        tx: tx.clone(),
    });
    let n = replay.len();
    for frame in replay {
        let _ = tx.send(Outgoing::Text(frame));
    }
    st.log_line(format!("GW#{conn_id} replayed {n} missed dispatches"));
    st.dispatch("RESUMED", json!({ "_trace": ["discord-sim"] }), None);
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
