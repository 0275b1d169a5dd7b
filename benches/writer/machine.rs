//! Machine description.

use mongodb::bson::doc;
use mongodb::Client;

pub fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".into(), |(_, v)| v.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    vec![
        ("CPUs (available parallelism)".into(), cpus.to_string()),
        ("CPU model".into(), model),
        ("RAM".into(), mem),
        ("kernel".into(), kernel),
        ("source".into(), git_revision()),
        (
            "build".into(),
            if cfg!(debug_assertions) {
                "debug (numbers not meaningful)".into()
            } else {
                "release (cargo bench profile)".into()
            },
        ),
    ]
}

/// `git rev-parse --short HEAD`, and whether the work tree differs from it.
fn git_revision() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = run(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    let dirty = run(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "src",
        "Cargo.toml",
    ])
    .is_some_and(|s| !s.is_empty());
    format!(
        "commit {head}{}",
        if dirty {
            " + uncommitted changes in src/ or Cargo.toml"
        } else {
            ""
        }
    )
}

pub async fn server_description(uri: &str) -> String {
    let Ok(client) = Client::with_uri_str(uri).await else {
        return "unknown".into();
    };
    let Ok(info) = client
        .database("admin")
        .run_command(doc! { "buildInfo": 1 })
        .await
    else {
        return "unknown".into();
    };
    let version = info.get_str("version").unwrap_or("?");
    let external = std::env::var("MONGODB_TEST_URI").is_ok_and(|u| !u.trim().is_empty());
    if let Ok(v2) = info.get_document("ferretdb") {
        return format!(
            "FerretDB {} on DocumentDB (PostgreSQL {}), reports MongoDB {version}{}",
            v2.get_str("version").unwrap_or("v2"),
            postgres_version(),
            if external {
                " (MONGODB_TEST_URI)"
            } else {
                "; built and started by tools/docdb/docdb.sh"
            }
        );
    }
    if let Ok(f) = info.get_str("ferretdbVersion") {
        let backend = if external {
            "backend unknown (MONGODB_TEST_URI)"
        } else {
            "SQLite backend, embedded by tools/ferretdb"
        };
        let f = if f == "unknown" && !external {
            // The embedded build does not know its version; go.mod does.
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/ferretdb/go.mod"),
            )
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| {
                        l.trim()
                            .strip_prefix("require github.com/FerretDB/FerretDB ")
                    })
                    .map(|v| format!("{} (from tools/ferretdb/go.mod)", v.trim()))
            })
            .unwrap_or_else(|| f.to_owned())
        } else {
            f.to_owned()
        };
        format!("FerretDB {f}, reports MongoDB {version}; {backend}")
    } else {
        format!("MongoDB {version}")
    }
}

/// The system `PostgreSQL` version (the one `tools/docdb/docdb.sh` runs).
fn postgres_version() -> String {
    std::process::Command::new("/usr/lib/postgresql/15/bin/postgres")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(2).map(str::to_owned))
        .unwrap_or_else(|| "15".into())
}
