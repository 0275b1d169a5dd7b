#!/usr/bin/env bash
# Runs the whole test suite: `bash scripts/test.sh [cargo test args...]`.
#
# The integration tests need a MongoDB-wire server. tests/it/support/db.rs uses,
# in order: $MONGODB_TEST_URI, a `mongod` on PATH, or FerretDB v2 on DocumentDB
# (PostgreSQL 15) built by tools/docdb/docdb.sh and started once per test run.
# This script builds that server up front (Debian packages, the extensions, the
# FerretDB binary; about 3 minutes cold, nothing when built) so a missing
# prerequisite fails here with one clear line instead of inside a test. Without
# root it cannot install PostgreSQL: then it falls back to FerretDB v1 (SQLite,
# tools/ferretdb), which scans collections and differs from MongoDB
# (docs/test-database.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

build_ferretdb_v1() {
  target="${CARGO_TARGET_DIR:-target}"
  [[ "$target" = /* ]] || target="$root/$target"
  bin="$target/ferretdb/ferretdb"
  src="$root/tools/ferretdb"
  if [[ ! -x "$bin" || "$src/main.go" -nt "$bin" || "$src/go.mod" -nt "$bin" || "$src/go.sum" -nt "$bin" ]]; then
    if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then export PATH="$PATH:/usr/local/go/bin"; fi
    gov="$(go env GOVERSION 2>/dev/null || true)"
    if [[ ! "$gov" =~ ^go1\.([0-9]+) ]] || (( BASH_REMATCH[1] < 21 )); then
      echo "test.sh: error: the tests need a MongoDB-wire server: run as root (to build FerretDB v2 + DocumentDB), or install Go >= 1.21 for the FerretDB v1 fallback (found: ${gov:-none}), or install mongod, or set MONGODB_TEST_URI." >&2
      exit 1
    fi
    echo "test.sh: building the FerretDB v1 fallback server into $bin ($gov)..."
    mkdir -p "$(dirname "$bin")"
    tmp="$(dirname "$bin")/.ferretdb.build.$$"
    (cd "$src" && go build -buildvcs=false -o "$tmp" .)
    mv -f "$tmp" "$bin"
  fi
  echo "test.sh: using the FerretDB v1 fallback server $bin (not root: PostgreSQL cannot be installed)"
}

if [[ -n "${MONGODB_TEST_URI:-}" ]]; then
  echo "test.sh: using MONGODB_TEST_URI=$MONGODB_TEST_URI"
elif command -v mongod >/dev/null 2>&1; then
  echo "test.sh: using $(command -v mongod) (started by the tests on a free port)"
elif bash tools/docdb/docdb.sh built || [[ $EUID -eq 0 ]]; then
  bash tools/docdb/docdb.sh build
  echo "test.sh: using FerretDB v2 + DocumentDB (tools/docdb/docdb.sh; started by the tests)"
else
  build_ferretdb_v1
fi

# The clock-skew tests (tests/it/lease_handoff.rs) preload libfaketime into
# the bot: Debian's faketime package.
if ! compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null && [[ ! -e /usr/lib/faketime/libfaketime.so.1 ]]; then
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "test.sh: installing faketime (libfaketime, for the clock-skew tests)..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends faketime >/dev/null 2>&1 || {
      DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends faketime >/dev/null
    }
  else
    echo "test.sh: error: the clock-skew tests need libfaketime: install Debian's faketime package (apt-get install faketime) or run as root." >&2
    exit 1
  fi
fi

# The deployment-manifest tests (tests/it/deploy.rs) parse YAML with PyYAML.
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "test.sh: installing python3-yaml (for the deployment-manifest tests)..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-yaml >/dev/null 2>&1 || {
      DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-yaml >/dev/null
    }
  else
    echo "test.sh: error: the deployment-manifest tests need python3 with PyYAML (apt-get install python3-yaml) or run as root." >&2
    exit 1
  fi
fi

echo "test.sh: cargo test --locked $*"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
