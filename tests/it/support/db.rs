//! The test suite's database: one MongoDB-wire server per test process, and a
//! fresh database per test.
//!
//! [`server_uri`] picks, in this order:
//! 1. `MONGODB_TEST_URI` if set (used as is; nothing is started);
//! 2. a `mongod` found on `PATH`, started on a free port with a temp data dir;
//! 3. FerretDB v2 on `DocumentDB` (`PostgreSQL` 15), built by
//!    `tools/docdb/docdb.sh build` into `<target dir>/docdb` and started by
//!    `tools/docdb/docdb.sh run` with a temp data dir (`bash scripts/test.sh`
//!    builds it up front); this needs root (Debian packages, and the
//!    extensions go into the system `PostgreSQL` tree);
//! 4. only where that cannot be had (not root, nothing built): FerretDB v1
//!    (`SQLite` backend) through the Go wrapper in `tools/ferretdb`, with a
//!    note; v1 scans a collection for any filter but `{_id}` and differs from
//!    MongoDB where `docs/test-database.md` says.
//!
//! Started servers never outlive the test process: the `DocumentDB` supervisor
//! and the FerretDB v1 wrapper get `--parent-pid <our pid>` and poll for it;
//! `mongod` is spawned from a thread that never exits with `PR_SET_PDEATHSIG`
//! (which fires when the spawning *thread* dies, so the thread must live as
//! long as the process). Their data dirs live under the system temp dir as
//! `study-tracker-db-<pid>-*`; dirs of dead test processes are swept on the
//! next start.
//!
//! If no server can be had, the first caller panics with what to install (and
//! every later caller with the same message): tests are never skipped silently.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};

/// How long a started server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const TMP_PREFIX: &str = "study-tracker-db-";

struct Server {
    uri: String,
    // Kept for the life of the process (statics are never dropped: the server
    // exits with us, the dir is swept by a later run).
    _child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// Base URI (`mongodb://host:port/`) of this test process's server, starting it
/// on first use. Thread-safe; blocks (possibly minutes, on a cold Go build).
pub fn server_uri() -> &'static str {
    match SERVER.get_or_init(start_server) {
        Ok(s) => &s.uri,
        Err(e) => panic!("{e}"),
    }
}

/// A fresh, empty database on the test server. `uri` is the server's base URI
/// (what the bot's Mongo URI setting would hold), `name` the database name.
pub struct TestDb {
    pub uri: String,
    pub name: String,
    pub client: Client,
}

impl TestDb {
    pub fn db(&self) -> Database {
        self.client.database(&self.name)
    }

    /// True when the server is FerretDB v1 (its `buildInfo` has
    /// `ferretdbVersion`; v2 has a `ferretdb` document instead), the fallback
    /// server whose quirks `docs/test-database.md` lists.
    pub async fn is_ferretdb_v1(&self) -> bool {
        let info = self
            .db()
            .run_command(doc! { "buildInfo": 1 })
            .await
            .expect("buildInfo");
        info.contains_key("ferretdbVersion")
    }
}

/// A new database (`test_<random hex>`) on [`server_uri`], with its own client
/// (clients are bound to the runtime that created them, so one per test).
pub async fn fresh_db() -> TestDb {
    let uri = tokio::task::spawn_blocking(server_uri)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        .to_string();
    let name = format!("test_{:016x}", rand::random::<u64>());
    let mut opts = ClientOptions::parse(&uri)
        .await
        .unwrap_or_else(|e| panic!("bad test server URI {uri:?}: {e}"));
    opts.server_selection_timeout = Some(Duration::from_secs(20));
    opts.app_name = Some("study-tracker-tests".into());
    let client = Client::with_options(opts).expect("mongodb client");
    let ping: Document = client
        .database(&name)
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap_or_else(|e| panic!("test server {uri} does not answer ping: {e}"));
    assert!(
        ping.get_f64("ok")
            .map_or(true, |ok| (ok - 1.0).abs() < f64::EPSILON),
        "ping: {ping}"
    );
    TestDb { uri, name, client }
}

fn start_server() -> Result<Server, String> {
    if let Ok(uri) = std::env::var("MONGODB_TEST_URI") {
        if !uri.trim().is_empty() {
            return Ok(Server {
                uri,
                _child: None,
                _dir: None,
            });
        }
    }
    sweep_stale_dirs();
    if let Some(mongod) = find_on_path("mongod") {
        match start_mongod(&mongod) {
            Ok(s) => return Ok(s),
            Err(e) => note(&format!(
                "study-tracker tests: {e}; falling back to FerretDB"
            )),
        }
    }
    match docdb_usable() {
        Ok(script) => start_docdb(&script),
        Err(why) => {
            note(&format!(
                "study-tracker tests: FerretDB v2 + DocumentDB unavailable ({why}); falling back to FerretDB v1 (SQLite), which differs from MongoDB (docs/test-database.md)"
            ));
            start_ferretdb()
        }
    }
}

/// `tools/docdb/docdb.sh` when it can run here: already built, or root (it
/// installs Debian packages and the extensions itself).
fn docdb_usable() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/docdb/docdb.sh");
    let built = Command::new("bash")
        .arg(&script)
        .arg("built")
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if built || unsafe { libc::geteuid() } == 0 {
        Ok(script)
    } else {
        Err("not built, and building it needs root".into())
    }
}

fn start_docdb(script: &Path) -> Result<Server, String> {
    let dir = temp_dir()?;
    let log = dir.path().join("docdb.err");
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let t0 = Instant::now();
    let child = Command::new("bash")
        .arg(script)
        .arg("run")
        .arg(dir.path().join("server"))
        .args(["--parent-pid", &std::process::id().to_string()])
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    // A cold build (packages, extensions, `go install`) takes minutes.
    let what = format!("FerretDB v2 + DocumentDB ({} run)", script.display());
    let server = serve(child, dir, &log, Duration::from_secs(900), &what)?;
    note(&format!(
        "study-tracker tests: FerretDB v2 + DocumentDB at {} (ready in {:.1?})",
        server.uri,
        t0.elapsed()
    ));
    Ok(server)
}

/// The server once `child` says where it listens, or why it did not start.
fn serve(
    mut child: Child,
    dir: tempfile::TempDir,
    log: &Path,
    timeout: Duration,
    what: &str,
) -> Result<Server, String> {
    if let Some(uri) = wait_listening(&mut child, timeout) {
        Ok(Server {
            uri,
            _child: Some(child),
            _dir: Some(dir),
        })
    } else {
        let _ = child.kill();
        let status = child.wait().ok();
        Err(format!(
            "{what} did not start (exit: {status:?}); log {}:\n{}",
            log.display(),
            tail(log)
        ))
    }
}

/// Reads "LISTENING <uri>" from the child's stdout, then keeps draining it so
/// the server never gets EPIPE.
fn wait_listening(child: &mut Child, timeout: Duration) -> Option<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            if let Some(uri) = line.strip_prefix("LISTENING ") {
                let _ = tx.send(uri.trim().to_string());
                break;
            }
            line.clear();
        }
        drop(tx);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx.recv_timeout(timeout).ok()
}

fn start_mongod(mongod: &Path) -> Result<Server, String> {
    let dir = temp_dir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot pick a free port: {e}"))?
        .port();
    let log = dir.path().join("mongod.log");
    let mut cmd = Command::new(mongod);
    cmd.arg("--dbpath")
        .arg(dir.path())
        .args([
            "--port",
            &port.to_string(),
            "--bind_ip",
            "127.0.0.1",
            "--nounixsocket",
        ])
        .arg("--logpath")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child =
        spawn_with_pdeathsig(cmd).map_err(|e| format!("cannot run {}: {e}", mongod.display()))?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if std::net::TcpStream::connect(&addr).is_ok() {
            break;
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "{} did not start ({exited:?}); log {}:\n{}",
                mongod.display(),
                log.display(),
                tail(&log)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Server {
        uri: format!("mongodb://{addr}/"),
        _child: Some(child),
        _dir: Some(dir),
    })
}

/// Spawns from a thread that never exits, so that `PR_SET_PDEATHSIG` fires only
/// when the whole test process dies.
fn spawn_with_pdeathsig(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("mongod-parent".into())
        .spawn(move || {
            let _ = tx.send(cmd.spawn());
            loop {
                std::thread::park();
            }
        })?;
    rx.recv().expect("spawner thread")
}

fn start_ferretdb() -> Result<Server, String> {
    let bin = ferretdb_binary()?;
    let dir = temp_dir()?;
    let log = dir.path().join("ferretdb.log");
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let child = Command::new(&bin)
        .args([
            "-listen",
            "127.0.0.1:0",
            "-parent-pid",
            &std::process::id().to_string(),
        ])
        .arg("-dir")
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;

    let what = format!("FerretDB test server {}", bin.display());
    serve(child, dir, &log, START_TIMEOUT, &what)
}

/// `<target dir>/ferretdb/ferretdb`, (re)built when missing or older than
/// `tools/ferretdb/{main.go,go.mod,go.sum}`.
fn ferretdb_binary() -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/ferretdb");
    let bin = target_dir().join("ferretdb/ferretdb");
    let built = mtime(&bin);
    let stale = built.is_none()
        || ["main.go", "go.mod", "go.sum"]
            .iter()
            .any(|f| mtime(&src.join(f)) > built);
    if !stale {
        return Ok(bin);
    }
    let Some(go) = find_on_path("go").or_else(|| {
        let p = PathBuf::from("/usr/local/go/bin/go");
        p.is_file().then_some(p)
    }) else {
        if built.is_some() {
            note(&format!(
                "study-tracker tests: {} is older than tools/ferretdb but `go` is not installed; using it anyway",
                bin.display()
            ));
            return Ok(bin);
        }
        return Err(format!(
            "The integration tests need a MongoDB-wire server and none was found: MONGODB_TEST_URI \
             is unset, there is no `mongod` on PATH, and the FerretDB test server ({}) cannot be \
             built because the Go toolchain is missing. Install Go >= 1.21 (https://go.dev/dl/ or \
             `apt-get install golang-go`) and re-run `bash scripts/test.sh`, or set \
             MONGODB_TEST_URI=mongodb://host:port/ to use an existing server.",
            bin.display()
        ));
    };
    let parent = bin.parent().expect("bin has a parent");
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    note(&format!(
        "study-tracker tests: building the FerretDB test server into {} (`go build` in {}; a cold build takes a few minutes)...",
        bin.display(),
        src.display()
    ));
    // Build to a private name and rename, so concurrent test processes never
    // run a half-written binary.
    let tmp = parent.join(format!(".ferretdb.build.{}", std::process::id()));
    let t0 = Instant::now();
    let out = Command::new(&go)
        .args(["build", "-buildvcs=false", "-o"])
        .arg(&tmp)
        .arg(".")
        .current_dir(&src)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", go.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "`go build` of the FerretDB test server in {} failed ({}):\n{}{}",
            src.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &bin).map_err(|e| format!("rename to {}: {e}", bin.display()))?;
    note(&format!(
        "study-tracker tests: built {} in {:.0?}",
        bin.display(),
        t0.elapsed()
    ));
    Ok(bin)
}

fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| manifest.join("target"));
    manifest.join(dir) // no-op when `dir` is absolute
}

fn temp_dir() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix(&format!("{TMP_PREFIX}{}-", std::process::id()))
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))
}

/// Removes data dirs left by test processes that no longer exist.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let dead = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        // The age check guards against PIDs from another PID namespace.
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        if dead && old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// To the real stderr, bypassing the test harness's output capture, so a long
/// build is visible while it happens.
fn note(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
