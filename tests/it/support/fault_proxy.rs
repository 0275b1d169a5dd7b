//! A TCP fault proxy for the MongoDB wire protocol.
//!
//! It sits on loopback between a client (the bot, a benchmark, the driver in a
//! test) and a MongoDB-compatible server, frames every wire message (16-byte
//! header, first field = little-endian int32 total length) and can inject
//! faults:
//!
//! * [`FaultProxy::set_delay`]: added round-trip latency (each request is held
//!   for `rtt` before it is forwarded; requests are queued, not serialised, so
//!   throughput is not capped by the delay);
//! * [`FaultProxy::drop_replies`]: ambiguous failures: the request reaches the
//!   server (so it is applied) but every n-th reply for that command is
//!   swallowed and the client connection is closed;
//! * [`FaultProxy::set_down`]: an outage: current connections are closed, new
//!   ones are accepted and closed at once;
//! * [`FaultProxy::set_blackhole`]: requests are read and discarded, nothing is
//!   answered (the client hangs until its own timeout);
//! * [`FaultProxy::reset_all`]: every current connection is reset (RST) once;
//! * [`FaultProxy::down_after_reply`]: an outage that starts right after one
//!   chosen command's reply reached the client (to cut a sequence of commands
//!   between two of them);
//! * [`FaultProxy::hold_reply`]: one chosen command's reply is held back
//!   (the command applied) until [`FaultProxy::release_held`], for example
//!   to freeze the client between two commands of one batch.
//!
//! It can also keep the bodies of chosen commands ([`FaultProxy::capture`]),
//! so a test can look at exactly what a client sent (and, say, `explain` it).
//!
//! Requests are classified by command name: the first key of the kind-0
//! section of an `OP_MSG` (or of the query document of a legacy `OP_QUERY`).
//! The driver's monitoring connection sends `hello`/`isMaster` on its own
//! schedule, so faults meant for writes should be filtered by command name.
//!
//! Frames are forwarded verbatim in both directions; server-to-client frames
//! need not be 1:1 with requests (`moreToCome`/exhaust streams pass through).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const OP_QUERY: i32 = 2004;
const OP_MSG: i32 = 2013;
/// Header (16) + the largest message a server accepts (48 MB) with slack.
const MAX_FRAME: usize = 64 * 1024 * 1024;
const MSG_CHECKSUM_PRESENT: u32 = 1 << 0;
const MSG_MORE_TO_COME: u32 = 1 << 1;

/// A running proxy. Clones share the same proxy; it stops when the last clone
/// is dropped or on [`FaultProxy::shutdown`].
#[derive(Clone)]
pub struct FaultProxy {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept_task: tokio::task::AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop();
        self.accept_task.abort();
    }
}

struct DropRule {
    every_nth: u32,
    seen: u64,
}

struct Shared {
    upstream: SocketAddr,
    /// `(command, first value)` whose next reply is held back.
    hold: Mutex<Option<(String, String)>>,
    /// Whether a reply is held back now.
    holding: AtomicBool,
    /// Bumped to let held replies through.
    release: watch::Sender<u64>,
    /// `(command, first value)` whose requests are refused: the connection
    /// is closed before the request is forwarded (not applied).
    refuse: Mutex<Option<(String, String)>>,
    /// Bytes whose requests are refused likewise (a field name, say).
    refuse_bytes: Mutex<Option<Vec<u8>>>,
    /// Added delay for requests of one `(command, first value)`.
    slow: Mutex<Option<(String, String, Duration)>>,
    /// Requests forwarded per `(command, first value)`.
    target_counts: Mutex<HashMap<(String, String), u64>>,
    /// `(command, first value)` whose next reply starts an outage.
    down_after: Mutex<Option<(String, String)>>,
    delay_us: AtomicU64,
    down: AtomicBool,
    blackhole: AtomicBool,
    stopped: AtomicBool,
    /// Bumped to make every current connection reset itself.
    kill: watch::Sender<u64>,
    counts: Mutex<HashMap<String, u64>>,
    total: AtomicU64,
    dropped: AtomicU64,
    rules: Mutex<HashMap<String, DropRule>>,
    active: AtomicUsize,
    accepted: AtomicU64,
    /// Commands whose bodies are kept, and the bodies, in arrival order.
    capture: Mutex<(HashSet<String>, Vec<mongodb::bson::Document>)>,
}

impl Shared {
    fn stop(&self) {
        self.stopped.store(true, SeqCst);
        self.kill_all();
    }

    fn kill_all(&self) {
        self.kill
            .send_modify(|epoch| *epoch = epoch.wrapping_add(1));
    }

    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(SeqCst))
    }

    fn count_target(&self, req: &Request) {
        if let (Some(cmd), Some(target)) = (&req.command, &req.target) {
            *self
                .target_counts
                .lock()
                .unwrap()
                .entry((cmd.clone(), target.clone()))
                .or_insert(0) += 1;
        }
    }

    /// Whether `req` is the one [`FaultProxy::hold_reply`] armed (it
    /// disarms the rule).
    fn is_held(&self, req: &Request) -> bool {
        let mut armed = self.hold.lock().unwrap();
        let hit = armed.as_ref().is_some_and(|(cmd, target)| {
            req.command.as_deref() == Some(cmd) && req.target.as_deref() == Some(target)
        });
        if hit {
            *armed = None;
        }
        hit
    }

    /// Counts `req` and notes, by its request id, what to do with its reply:
    /// swallow it, start an outage after it, or hold it back.
    fn mark(
        &self,
        req: &Request,
        doomed: &Mutex<HashSet<i32>>,
        last_before_down: &Mutex<Option<i32>>,
        held: &Mutex<Option<i32>>,
    ) {
        self.count(req.command.as_deref());
        self.count_target(req);
        if self.is_held(req) {
            *held.lock().unwrap() = Some(req.request_id);
        }
        if self.doom(req) {
            doomed.lock().unwrap().insert(req.request_id);
        }
        if self.is_last_before_down(req) {
            *last_before_down.lock().unwrap() = Some(req.request_id);
        }
    }

    /// Whether [`FaultProxy::refuse_requests`] refuses `req`.
    fn refused(&self, req: &Request) -> bool {
        self.refuse.lock().unwrap().as_ref().is_some_and(|(c, t)| {
            req.command.as_deref() == Some(c) && req.target.as_deref() == Some(t)
        })
    }

    /// Whether [`FaultProxy::refuse_containing`] refuses `frame`.
    fn refused_bytes(&self, frame: &[u8]) -> bool {
        self.refuse_bytes
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|n| !n.is_empty() && frame.windows(n.len()).any(|w| w == n))
    }

    /// The delay for `req`: the round-trip delay, plus the one
    /// [`FaultProxy::delay_command`] set for its command.
    fn delay_of(&self, req: &Request) -> Duration {
        let slow = self.slow.lock().unwrap().as_ref().and_then(|(c, t, d)| {
            (req.command.as_deref() == Some(c) && req.target.as_deref() == Some(t)).then_some(*d)
        });
        self.delay() + slow.unwrap_or_default()
    }

    fn count(&self, command: Option<&str>) {
        self.total.fetch_add(1, SeqCst);
        if let Some(cmd) = command {
            *self
                .counts
                .lock()
                .unwrap()
                .entry(cmd.to_owned())
                .or_insert(0) += 1;
        }
    }

    fn keep_body(&self, req: &Request, frame: &[u8]) {
        let Some(cmd) = req.command.as_deref() else {
            return;
        };
        let mut capture = self.capture.lock().unwrap();
        if capture.0.contains(cmd) {
            if let Some(body) = command_body(frame) {
                capture.1.push(body);
            }
        }
    }

    /// Whether the reply to this request is to be dropped.
    /// Whether `req` is the one [`FaultProxy::down_after_reply`] armed (it
    /// disarms the rule).
    fn is_last_before_down(&self, req: &Request) -> bool {
        let mut armed = self.down_after.lock().unwrap();
        let hit = armed.as_ref().is_some_and(|(cmd, target)| {
            req.command.as_deref() == Some(cmd) && req.target.as_deref() == Some(target)
        });
        if hit {
            *armed = None;
        }
        hit
    }

    fn doom(&self, req: &Request) -> bool {
        if req.more_to_come {
            return false; // no reply is expected at all
        }
        let Some(cmd) = req.command.as_deref() else {
            return false;
        };
        let mut rules = self.rules.lock().unwrap();
        match rules.get_mut(cmd) {
            Some(rule) if rule.every_nth > 0 => {
                rule.seen += 1;
                rule.seen % u64::from(rule.every_nth) == 0
            }
            _ => false,
        }
    }
}

impl FaultProxy {
    /// Starts a proxy listening on `127.0.0.1:0` that forwards to `upstream`.
    /// Upstream connections are opened per client connection, lazily.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("fault proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fault proxy: local_addr");
        let (kill, _) = watch::channel(0u64);
        let (release, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            upstream,
            hold: Mutex::new(None),
            holding: AtomicBool::new(false),
            release,
            target_counts: Mutex::new(HashMap::new()),
            slow: Mutex::new(None),
            refuse: Mutex::new(None),
            refuse_bytes: Mutex::new(None),
            delay_us: AtomicU64::new(0),
            down: AtomicBool::new(false),
            blackhole: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            kill,
            counts: Mutex::new(HashMap::new()),
            total: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rules: Mutex::new(HashMap::new()),
            down_after: Mutex::new(None),
            active: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            capture: Mutex::new((HashSet::new(), Vec::new())),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone())).abort_handle();
        FaultProxy {
            handle: Arc::new(Handle {
                shared,
                addr,
                accept_task,
            }),
        }
    }

    /// `mongodb://127.0.0.1:PORT/?directConnection=true`
    pub fn uri(&self) -> String {
        format!("mongodb://{}/?directConnection=true", self.handle.addr)
    }

    /// [`FaultProxy::uri`] with extra options appended, e.g.
    /// `uri_with("serverSelectionTimeoutMS=1000&connectTimeoutMS=1000")`.
    pub fn uri_with(&self, options: &str) -> String {
        let options = options.trim_start_matches(['?', '&']);
        if options.is_empty() {
            self.uri()
        } else {
            format!("{}&{}", self.uri(), options)
        }
    }

    /// Added round-trip delay: each client request is held for `rtt` before it
    /// is forwarded (replies are not delayed), so one request/reply round trip
    /// takes `rtt` longer. Applies to requests read after the call.
    /// `Duration::ZERO` disables.
    pub fn set_delay(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.handle.shared.delay_us.store(us, SeqCst);
    }

    /// For every `every_nth`-th request of `command` (counted from this call),
    /// forward the request to the server but swallow the server's reply and
    /// close the client connection: the operation is applied but the client
    /// sees a network error. `every_nth == 0` disables the rule for `command`.
    /// Requests sent with `moreToCome` (no reply expected) are never counted.
    pub fn drop_replies(&self, command: &str, every_nth: u32) {
        let mut rules = self.handle.shared.rules.lock().unwrap();
        if every_nth == 0 {
            rules.remove(command);
        } else {
            rules.insert(command.to_owned(), DropRule { every_nth, seen: 0 });
        }
    }

    /// Arms a one-shot outage: the next request whose command is `command`
    /// and whose command value is `target` (for `update`, the collection) is
    /// forwarded and its reply relayed; right after, the proxy goes down as
    /// with [`FaultProxy::set_down`]`(true)`.
    pub fn down_after_reply(&self, command: &str, target: &str) {
        *self.handle.shared.down_after.lock().unwrap() =
            Some((command.to_owned(), target.to_owned()));
    }

    /// While set, every request whose command is `command` and whose
    /// command value is `target` is not forwarded: the client connection is
    /// closed instead (the client sees a network error; nothing applied).
    /// `None`: off.
    pub fn refuse_requests(&self, rule: Option<(&str, &str)>) {
        *self.handle.shared.refuse.lock().unwrap() =
            rule.map(|(c, t)| (c.to_owned(), t.to_owned()));
    }

    /// While set, every request whose bytes contain `needle` (e.g. a field
    /// name only one kind of statement writes) is not forwarded: the client
    /// connection is closed instead. `None`: off.
    pub fn refuse_containing(&self, needle: Option<&[u8]>) {
        *self.handle.shared.refuse_bytes.lock().unwrap() = needle.map(<[u8]>::to_vec);
    }

    /// Holds every request whose command is `command` and whose command
    /// value is `target` (for `find`, the collection) for `delay` before it
    /// is forwarded (`Duration::ZERO`: off). Other requests are not delayed.
    pub fn delay_command(&self, command: &str, target: &str, delay: Duration) {
        *self.handle.shared.slow.lock().unwrap() =
            (!delay.is_zero()).then(|| (command.to_owned(), target.to_owned(), delay));
    }

    /// Arms a one-shot hold: the next request whose command is `command` and
    /// whose command value is `target` is forwarded (so applied), and its
    /// reply is held back until [`FaultProxy::release_held`].
    pub fn hold_reply(&self, command: &str, target: &str) {
        *self.handle.shared.hold.lock().unwrap() = Some((command.to_owned(), target.to_owned()));
    }

    /// Whether a reply armed by [`FaultProxy::hold_reply`] is held back now.
    pub fn holding(&self) -> bool {
        self.handle.shared.holding.load(SeqCst)
    }

    /// Lets held-back replies through.
    pub fn release_held(&self) {
        self.handle
            .shared
            .release
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Number of requests forwarded with command `command` whose command
    /// value is `target` (for `update`, the collection).
    pub fn requests_to(&self, command: &str, target: &str) -> u64 {
        self.handle
            .shared
            .target_counts
            .lock()
            .unwrap()
            .get(&(command.to_owned(), target.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Database outage: while `down`, all current connections are closed and
    /// new ones are accepted and closed immediately.
    pub fn set_down(&self, down: bool) {
        let shared = &self.handle.shared;
        shared.down.store(down, SeqCst);
        if down {
            shared.kill_all();
        }
    }

    /// While on, requests are read and discarded and nothing reaches the client
    /// (server frames are swallowed too): clients hang until their own
    /// timeouts. Connections stay open. Turning it off resumes forwarding on
    /// the same connections (a client still waiting for a swallowed reply keeps
    /// waiting).
    pub fn set_blackhole(&self, on: bool) {
        self.handle.shared.blackhole.store(on, SeqCst);
    }

    /// Resets (RST) every current client connection once; new connections
    /// are served normally.
    pub fn reset_all(&self) {
        self.handle.shared.kill_all();
    }

    /// Number of requests forwarded to the server with command name `command`
    /// (exact, case-sensitive: the driver handshake uses `isMaster`/`hello`);
    /// `""` counts all forwarded requests. Blackholed requests are not counted.
    pub fn requests(&self, command: &str) -> u64 {
        let shared = &self.handle.shared;
        if command.is_empty() {
            shared.total.load(SeqCst)
        } else {
            shared
                .counts
                .lock()
                .unwrap()
                .get(command)
                .copied()
                .unwrap_or(0)
        }
    }

    /// From now on keeps the body (the `OP_MSG` kind-0 document) of every
    /// request whose command name is one of `commands`.
    pub fn capture(&self, commands: &[&str]) {
        let mut capture = self.handle.shared.capture.lock().unwrap();
        capture.0 = commands.iter().map(|c| (*c).to_owned()).collect();
    }

    /// The bodies kept since [`FaultProxy::capture`] (taken: a second call
    /// returns only what came after the first).
    pub fn captured(&self) -> Vec<mongodb::bson::Document> {
        std::mem::take(&mut self.handle.shared.capture.lock().unwrap().1)
    }

    /// Number of server replies swallowed by [`FaultProxy::drop_replies`].
    pub fn dropped_replies(&self) -> u64 {
        self.handle.shared.dropped.load(SeqCst)
    }

    /// Client connections currently open through the proxy.
    pub fn connections(&self) -> usize {
        self.handle.shared.active.load(SeqCst)
    }

    /// Client connections accepted so far (including refused ones while down).
    pub fn accepted(&self) -> u64 {
        self.handle.shared.accepted.load(SeqCst)
    }

    /// Stops listening and closes every connection. Idempotent; also happens
    /// when the last clone is dropped.
    pub fn shutdown(&self) {
        self.handle.shared.stop();
        self.handle.accept_task.abort();
    }
}

/// `host:port` of the first host of a `mongodb://` URI (credentials, path and
/// options ignored; default port 27017; `localhost` → 127.0.0.1).
pub fn socket_addr_of(uri: &str) -> SocketAddr {
    let rest = uri
        .strip_prefix("mongodb://")
        .unwrap_or_else(|| panic!("socket_addr_of: not a mongodb:// URI: {uri}"));
    let hosts = rest.split(['/', '?']).next().unwrap_or("");
    let hosts = hosts.rsplit_once('@').map_or(hosts, |(_, h)| h);
    let host_port = hosts.split(',').next().unwrap_or("");
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .unwrap_or_else(|| panic!("socket_addr_of: bad IPv6 host in {uri}"));
        (h, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    let port: u16 = match port {
        Some(p) => p
            .parse()
            .unwrap_or_else(|_| panic!("socket_addr_of: bad port in {uri}")),
        None => 27017,
    };
    if host.eq_ignore_ascii_case("localhost") {
        return SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return SocketAddr::new(ip, port);
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("socket_addr_of: cannot resolve {host}:{port} from {uri}"))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // EMFILE and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.accepted.fetch_add(1, SeqCst);
        // Subscribe before checking `down`: set_down stores the flag, then
        // bumps the epoch, so either we see the flag or we see the bump.
        let kill = shared.kill.subscribe();
        if shared.stopped.load(SeqCst) {
            return;
        }
        if shared.down.load(SeqCst) {
            drop(client); // accept + close
            continue;
        }
        tokio::spawn(serve(shared.clone(), client, kill));
    }
}

struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, SeqCst);
    }
}

async fn serve(shared: Arc<Shared>, client: TcpStream, mut kill: watch::Receiver<u64>) {
    shared.active.fetch_add(1, SeqCst);
    let _guard = ActiveGuard(shared.clone());

    let server = tokio::select! {
        r = TcpStream::connect(shared.upstream) => match r {
            Ok(s) => s,
            Err(_) => return, // upstream unreachable: close the client
        },
        _ = kill.changed() => {
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let (client_read, mut client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let mut client_read = BufReader::with_capacity(64 * 1024, client_read);
    let mut server_read = BufReader::with_capacity(64 * 1024, server_read);

    // requestIds whose reply is to be swallowed.
    let doomed: Mutex<HashSet<i32>> = Mutex::new(HashSet::new());
    // requestId whose reply, once relayed, starts an outage.
    let last_before_down: Mutex<Option<i32>> = Mutex::new(None);
    // requestId whose reply is held back until released.
    let held: Mutex<Option<i32>> = Mutex::new(None);
    let (tx, mut rx) = mpsc::unbounded_channel::<(Option<Instant>, Vec<u8>)>();

    let client_to_queue = {
        let (shared, doomed, client_read) = (&shared, &doomed, &mut client_read);
        let (last_before_down, held) = (&last_before_down, &held);
        async move {
            let tx = tx; // dropped at EOF so that the writer drains and ends
            loop {
                let Some(frame) = read_frame(client_read).await? else {
                    return Ok::<(), io::Error>(());
                };
                if shared.blackhole.load(SeqCst) {
                    continue;
                }
                let req = parse_request(&frame);
                if shared.refused(&req) || shared.refused_bytes(&frame) {
                    return Ok(()); // closes the connection, unforwarded
                }
                shared.keep_body(&req, &frame);
                shared.mark(&req, doomed, last_before_down, held);
                let delay = shared.delay_of(&req);
                let deadline = (!delay.is_zero()).then(|| Instant::now() + delay);
                if tx.send((deadline, frame)).is_err() {
                    return Ok(());
                }
            }
        }
    };
    let queue_to_server = async {
        while let Some((deadline, frame)) = rx.recv().await {
            if let Some(deadline) = deadline {
                if deadline > Instant::now() {
                    tokio::time::sleep_until(deadline).await;
                }
            }
            server_write.write_all(&frame).await?;
        }
        Ok::<(), io::Error>(())
    };
    let server_to_client = async {
        loop {
            let Some(frame) = read_frame(&mut server_read).await? else {
                return Ok::<(), io::Error>(());
            };
            if shared.blackhole.load(SeqCst) {
                continue;
            }
            let response_to = le_i32(&frame, 8).unwrap_or(0);
            let doom = {
                let mut d = doomed.lock().unwrap();
                !d.is_empty() && d.remove(&response_to)
            };
            if doom {
                shared.dropped.fetch_add(1, SeqCst);
                return Ok(()); // swallow the reply and close the client
            }
            wait_if_held(&shared, &held, response_to).await;
            client_write.write_all(&frame).await?;
            let last = *last_before_down.lock().unwrap() == Some(response_to);
            if last {
                client_write.flush().await?;
                shared.down.store(true, SeqCst);
                shared.kill_all();
            }
        }
    };

    let killed = tokio::select! {
        _ = futures::future::try_join(client_to_queue, queue_to_server) => false,
        _ = server_to_client => false,
        _ = kill.changed() => true,
    };
    if killed {
        let _ = client_write.as_ref().set_zero_linger();
    }
}

/// Waits for [`FaultProxy::release_held`] if the reply to `response_to` is
/// the one [`FaultProxy::hold_reply`] armed.
async fn wait_if_held(shared: &Shared, held: &Mutex<Option<i32>>, response_to: i32) {
    if *held.lock().unwrap() != Some(response_to) {
        return;
    }
    let mut release = shared.release.subscribe();
    shared.holding.store(true, SeqCst);
    let _ = release.changed().await;
    shared.holding.store(false, SeqCst);
    *held.lock().unwrap() = None;
}

/// Reads one wire message; `Ok(None)` on a clean EOF before a header.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len_bytes = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len_bytes[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let len = i32::from_le_bytes(len_bytes);
    let len = usize::try_from(len).unwrap_or(0);
    if !(16..=MAX_FRAME).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("fault proxy: bad message length {len}"),
        ));
    }
    let mut frame = vec![0u8; len];
    frame[..4].copy_from_slice(&len_bytes);
    r.read_exact(&mut frame[4..]).await?;
    Ok(Some(frame))
}

// `request_id` is the wire protocol's own name.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Default, PartialEq)]
struct Request {
    request_id: i32,
    command: Option<String>,
    /// The command's value when it is a string (the collection of `update`).
    target: Option<String>,
    more_to_come: bool,
}

fn le_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn cstring_end(b: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&c| c == 0)
        .map(|p| from + p)
}

/// Key of the first element of the BSON document starting at `at`.
fn first_key(b: &[u8], at: usize) -> Option<String> {
    let doc_len = usize::try_from(le_i32(b, at)?).ok()?;
    let doc = b.get(at..at.checked_add(doc_len)?)?;
    if doc.len() < 6 || doc[4] == 0 {
        return None;
    }
    let end = cstring_end(doc, 5)?;
    Some(String::from_utf8_lossy(&doc[5..end]).into_owned())
}

/// Value of the first element of the BSON document at `at`, if a string.
fn first_string_value(b: &[u8], at: usize) -> Option<String> {
    let doc_len = usize::try_from(le_i32(b, at)?).ok()?;
    let doc = b.get(at..at.checked_add(doc_len)?)?;
    if doc.len() < 6 || doc[4] != 0x02 {
        return None;
    }
    let value = cstring_end(doc, 5)? + 1;
    let len = usize::try_from(le_i32(doc, value)?).ok()?;
    let bytes = doc.get(value + 4..value + 4 + len.checked_sub(1)?)?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// The kind-0 section of an `OP_MSG` (the command document), decoded.
fn command_body(frame: &[u8]) -> Option<mongodb::bson::Document> {
    if le_i32(frame, 12)? != OP_MSG {
        return None;
    }
    let mut pos = 20;
    while pos < frame.len() {
        match frame[pos] {
            0 => {
                let len = usize::try_from(le_i32(frame, pos + 1)?).ok()?;
                let doc = frame.get(pos + 1..pos + 1 + len)?;
                return mongodb::bson::Document::from_reader(doc).ok();
            }
            1 => pos += 1 + usize::try_from(le_i32(frame, pos + 1)?).ok()?,
            _ => return None,
        }
    }
    None
}

fn parse_request(frame: &[u8]) -> Request {
    let mut req = Request {
        request_id: le_i32(frame, 4).unwrap_or(0),
        ..Request::default()
    };
    match le_i32(frame, 12) {
        Some(OP_MSG) => {
            let Some(flags) = le_i32(frame, 16).map(|f| u32::from_le_bytes(f.to_le_bytes())) else {
                return req;
            };
            req.more_to_come = flags & MSG_MORE_TO_COME != 0;
            let end = frame
                .len()
                .saturating_sub(if flags & MSG_CHECKSUM_PRESENT != 0 {
                    4
                } else {
                    0
                });
            let mut pos = 20;
            while pos < end {
                match frame[pos] {
                    0 => {
                        req.command = first_key(frame, pos + 1);
                        req.target = first_string_value(frame, pos + 1);
                        break;
                    }
                    1 => {
                        let Some(size) =
                            le_i32(frame, pos + 1).and_then(|s| usize::try_from(s).ok())
                        else {
                            break;
                        };
                        pos += 1 + size;
                    }
                    _ => break,
                }
            }
        }
        Some(OP_QUERY) => {
            // flags(4) fullCollectionName(cstring) numberToSkip(4) numberToReturn(4) query
            if let Some(name_end) = cstring_end(frame, 20) {
                req.command = first_key(frame, name_end + 1 + 8);
            }
        }
        _ => {} // OP_COMPRESSED etc.: forwarded, counted only in the total
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op_msg(request_id: i32, flags: u32, key: &str) -> Vec<u8> {
        // document {key: 1i32}
        let mut doc = Vec::new();
        doc.extend_from_slice(&[0; 4]);
        doc.push(0x10);
        doc.extend_from_slice(key.as_bytes());
        doc.push(0);
        doc.extend_from_slice(&1i32.to_le_bytes());
        doc.push(0);
        let n = i32::try_from(doc.len()).unwrap();
        doc[..4].copy_from_slice(&n.to_le_bytes());
        let mut f = Vec::new();
        f.extend_from_slice(&[0; 4]);
        f.extend_from_slice(&request_id.to_le_bytes());
        f.extend_from_slice(&0i32.to_le_bytes());
        f.extend_from_slice(&OP_MSG.to_le_bytes());
        f.extend_from_slice(&flags.to_le_bytes());
        // a kind-1 section first, to exercise skipping
        let mut s1 = Vec::new();
        s1.extend_from_slice(&[0; 4]);
        s1.extend_from_slice(b"documents\0");
        s1.extend_from_slice(&doc);
        let sn = i32::try_from(s1.len()).unwrap();
        s1[..4].copy_from_slice(&sn.to_le_bytes());
        f.push(1);
        f.extend_from_slice(&s1);
        f.push(0);
        f.extend_from_slice(&doc);
        let len = i32::try_from(f.len()).unwrap();
        f[..4].copy_from_slice(&len.to_le_bytes());
        f
    }

    #[test]
    fn parses_op_msg_command_name() {
        let r = parse_request(&op_msg(7, 0, "update"));
        assert_eq!(
            r,
            Request {
                request_id: 7,
                command: Some("update".into()),
                target: None,
                more_to_come: false
            }
        );
        let r = parse_request(&op_msg(8, MSG_MORE_TO_COME, "insert"));
        assert!(r.more_to_come);
        assert_eq!(r.command.as_deref(), Some("insert"));
        assert_eq!(parse_request(&[0u8; 16]).command, None);
    }

    #[test]
    fn parses_the_target_collection() {
        // {update: "member_stats"} as a kind-0 section.
        let mut doc = Vec::new();
        doc.extend_from_slice(&[0; 4]);
        doc.push(0x02);
        doc.extend_from_slice(b"update\0");
        doc.extend_from_slice(&13i32.to_le_bytes());
        doc.extend_from_slice(b"member_stats\0");
        doc.push(0);
        let n = i32::try_from(doc.len()).unwrap();
        doc[..4].copy_from_slice(&n.to_le_bytes());
        let mut f = Vec::new();
        f.extend_from_slice(&[0; 4]);
        f.extend_from_slice(&9i32.to_le_bytes());
        f.extend_from_slice(&0i32.to_le_bytes());
        f.extend_from_slice(&OP_MSG.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.push(0);
        f.extend_from_slice(&doc);
        let len = i32::try_from(f.len()).unwrap();
        f[..4].copy_from_slice(&len.to_le_bytes());
        let r = parse_request(&f);
        assert_eq!(r.command.as_deref(), Some("update"));
        assert_eq!(r.target.as_deref(), Some("member_stats"));
    }

    #[test]
    fn parses_uris() {
        let a = socket_addr_of("mongodb://localhost:1234/");
        assert_eq!(a, "127.0.0.1:1234".parse().unwrap());
        let a = socket_addr_of("mongodb://u:p@127.0.0.1:5/db?x=1");
        assert_eq!(a, "127.0.0.1:5".parse().unwrap());
        let a = socket_addr_of("mongodb://127.0.0.1");
        assert_eq!(a.port(), 27017);
        let a = socket_addr_of("mongodb://[::1]:9,other:1/?replicaSet=x");
        assert_eq!(a, "[::1]:9".parse().unwrap());
    }
}
