//! An instant-acknowledge MongoDB wire stub, for the benchmark only.
//!
//! It speaks just enough `OP_MSG` for the Rust driver and the bot's store:
//! `hello`/`isMaster` (a standalone, wire version 21), `update` (every
//! statement reported as applied: `n` = number of statements, no write
//! errors), `find` (empty cursor), and `{ok: 1}` for anything else
//! (`ping`, `createIndexes`, `endSessions`, ...). Nothing is stored.
//!
//! It exists to measure the bot's side of the write path (tracker, spool,
//! fsync, BSON, driver, round trips, memory) when the real test server cannot
//! finish the workload; its figures say nothing about a database's cost.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mongodb::bson::{doc, DateTime, Document, RawDocument};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const OP_MSG: i32 = 2013;
const MORE_TO_COME: u32 = 1 << 1;
const CHECKSUM_PRESENT: u32 = 1 << 0;

/// A running stub; it stops when the runtime ends.
pub struct StubMongo {
    addr: SocketAddr,
    statements: Arc<AtomicU64>,
}

impl StubMongo {
    pub async fn start() -> StubMongo {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("stub: bind");
        let addr = listener.local_addr().expect("stub: addr");
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, counter.clone()));
            }
        });
        StubMongo { addr, statements }
    }

    /// `mongodb://127.0.0.1:PORT/`
    pub fn uri(&self) -> String {
        format!("mongodb://{}/", self.addr)
    }

    /// `update` statements acknowledged so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }
}

async fn serve(sock: TcpStream, statements: Arc<AtomicU64>) {
    let _ = sock.set_nodelay(true);
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::with_capacity(256 * 1024, r);
    let mut next_id = 1_i32;
    loop {
        let mut header = [0u8; 16];
        if r.read_exact(&mut header).await.is_err() {
            return;
        }
        let le = |b: &[u8]| i32::from_le_bytes(b.try_into().expect("4 bytes"));
        let len = usize::try_from(le(&header[0..4])).unwrap_or(0);
        let request_id = le(&header[4..8]);
        let op = le(&header[12..16]);
        if !(21..=64 << 20).contains(&len) {
            return;
        }
        let mut body = vec![0u8; len - 16];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        if op != OP_MSG {
            return; // the Rust driver speaks OP_MSG only
        }
        let flags = u32::from_le_bytes(body[0..4].try_into().expect("4 bytes"));
        let end = body.len() - if flags & CHECKSUM_PRESENT != 0 { 4 } else { 0 };
        // Sections: kind 0 = the command document, kind 1 = document sequences.
        let mut pos = 4;
        let mut command: Option<&RawDocument> = None;
        let mut sequence_docs = 0_u64;
        while pos < end {
            let kind = body[pos];
            pos += 1;
            let size = usize::try_from(le(&body[pos..pos + 4])).unwrap_or(0);
            if kind == 0 {
                command = RawDocument::from_bytes(&body[pos..pos + size]).ok();
            } else {
                // size, cstring identifier, documents
                let mut p = pos + 4;
                while p < pos + size && body[p] != 0 {
                    p += 1;
                }
                p += 1;
                while p < pos + size {
                    let dl = usize::try_from(le(&body[p..p + 4])).unwrap_or(0).max(5);
                    sequence_docs += 1;
                    p += dl;
                }
            }
            pos += size;
        }
        let Some(command) = command else { return };
        let name = command
            .iter()
            .next()
            .and_then(Result::ok)
            .map(|(k, _)| k.to_owned())
            .unwrap_or_default();
        let reply = match name.as_str() {
            "hello" | "isMaster" | "ismaster" => doc! {
                "helloOk": true,
                "ismaster": true,
                "isWritablePrimary": true,
                "maxBsonObjectSize": 16_777_216_i32,
                "maxMessageSizeBytes": 48_000_000_i32,
                "maxWriteBatchSize": 100_000_i32,
                "localTime": DateTime::now(),
                "logicalSessionTimeoutMinutes": 30_i32,
                "connectionId": 1_i32,
                "minWireVersion": 0_i32,
                "maxWireVersion": 21_i32,
                "readOnly": false,
                "ok": 1.0,
            },
            "buildInfo" | "buildinfo" => doc! { "version": "7.0.0", "stub": true, "ok": 1.0 },
            "update" => {
                let n = command
                    .get_array("updates")
                    .ok()
                    .map_or(sequence_docs, |a| a.into_iter().count() as u64);
                statements.fetch_add(n, Ordering::Relaxed);
                doc! { "n": n as i64, "nModified": 0_i64, "ok": 1.0 }
            }
            "find" => {
                let coll = command.get_str("find").unwrap_or("c");
                doc! { "cursor": { "firstBatch": [], "id": 0_i64, "ns": format!("stub.{coll}") }, "ok": 1.0 }
            }
            _ => doc! { "ok": 1.0 },
        };
        if flags & MORE_TO_COME != 0 {
            continue;
        }
        if w.write_all(&frame(&reply, next_id, request_id))
            .await
            .is_err()
        {
            return;
        }
        next_id = next_id.wrapping_add(1);
    }
}

fn frame(reply: &Document, id: i32, response_to: i32) -> Vec<u8> {
    let mut doc = Vec::new();
    reply.to_writer(&mut doc).expect("stub: encode reply");
    let len = 16 + 4 + 1 + doc.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as i32).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&response_to.to_le_bytes());
    out.extend_from_slice(&OP_MSG.to_le_bytes());
    out.extend_from_slice(&0_u32.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&doc);
    out
}
