#!/usr/bin/env bash
# Runs the whole test suite: `bash scripts/test.sh [cargo test args...]`.
#
# The integration tests need a MongoDB-wire server. tests/it/support/db.rs uses,
# in order: $MONGODB_TEST_URI, a `mongod` on PATH, or FerretDB (SQLite backend)
# built from tools/ferretdb with Go. This script builds that FerretDB binary up
# front (same path and staleness rule as db.rs) so a missing Go toolchain fails
# here with one clear line instead of inside a test.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ -n "${MONGODB_TEST_URI:-}" ]]; then
  echo "test.sh: using MONGODB_TEST_URI=$MONGODB_TEST_URI"
elif command -v mongod >/dev/null 2>&1; then
  echo "test.sh: using $(command -v mongod) (started by the tests on a free port)"
else
  target="${CARGO_TARGET_DIR:-target}"
  [[ "$target" = /* ]] || target="$root/$target"
  bin="$target/ferretdb/ferretdb"
  src="$root/tools/ferretdb"
  if [[ ! -x "$bin" || "$src/main.go" -nt "$bin" || "$src/go.mod" -nt "$bin" || "$src/go.sum" -nt "$bin" ]]; then
    if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then export PATH="$PATH:/usr/local/go/bin"; fi
    gov="$(go env GOVERSION 2>/dev/null || true)"
    if [[ ! "$gov" =~ ^go1\.([0-9]+) ]] || (( BASH_REMATCH[1] < 21 )); then
      echo "test.sh: error: the tests need a MongoDB-wire server: install Go >= 1.21 (found: ${gov:-none}; https://go.dev/dl/ or apt-get install golang-go) to build the bundled FerretDB, or install mongod, or set MONGODB_TEST_URI." >&2
      exit 1
    fi
    echo "test.sh: building the FerretDB test server into $bin ($gov; a cold build takes a few minutes)..."
    mkdir -p "$(dirname "$bin")"
    tmp="$(dirname "$bin")/.ferretdb.build.$$"
    (cd "$src" && go build -buildvcs=false -o "$tmp" .)
    mv -f "$tmp" "$bin"
  fi
  echo "test.sh: using FerretDB test server $bin"
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
