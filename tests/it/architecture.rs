//! The layout's rules, checked on the source tree (ARCHITECTURE.md,
//! "Invariants"): a rule that nothing checks drifts.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Lines of code (comments left out) in `file` that contain any of `needles`.
fn offending(file: &Path, needles: &[&str]) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| needles.iter().any(|n| l.contains(n)))
        .map(|l| format!("{}: {}", file.display(), l.trim()))
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_core_imports_no_io_crate_and_no_other_layer() {
    let forbidden = [
        "tokio",
        "serenity",
        "poise",
        "mongodb",
        "bson",
        "metrics",
        "axum",
        "crate::app",
        "crate::durable",
        "crate::store",
        "crate::discord",
        "crate::render",
        "crate::cmd",
        "crate::http",
        "crate::startup",
        "crate::config",
        "crate::cli",
        "crate::telemetry",
        "std::fs",
        "std::net",
    ];
    let bad: Vec<String> = rust_files(&src().join("core"))
        .iter()
        .flat_map(|f| offending(f, &forbidden))
        .collect();
    assert!(
        bad.is_empty(),
        "the core must stay sans-IO:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_the_store_talks_to_mongodb() {
    let bad: Vec<String> = rust_files(&src())
        .iter()
        .filter(|f| !f.starts_with(src().join("store")))
        .flat_map(|f| offending(f, &["mongodb::", "bson::", "doc!"]))
        .collect();
    assert!(
        bad.is_empty(),
        "BSON outside src/store:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_discord_adapter_holds_no_rules() {
    // The rules' inputs may be read there, but deciding on them is the
    // policy's job: no AFK comparison, no bot or webhook filter by hand.
    let bad: Vec<String> = rust_files(&src().join("discord"))
        .iter()
        .flat_map(|f| offending(f, &["!= afk", "== afk", ".bot {", "webhook_id.is_none()"]))
        .collect();
    assert!(
        bad.is_empty(),
        "rules belong in core::policy:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_file_in_src_is_over_about_400_lines() {
    let bad: Vec<String> = rust_files(&src())
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 420).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(bad.is_empty(), "files too long:\n{}", bad.join("\n"));
}
