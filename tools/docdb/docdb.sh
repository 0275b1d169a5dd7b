#!/usr/bin/env bash
# FerretDB v2 on DocumentDB (PostgreSQL 15): the project's MongoDB-wire test and
# development server.
#
#   tools/docdb/docdb.sh build             install packages, build and install the
#                                          extensions, go install FerretDB (idempotent)
#   tools/docdb/docdb.sh run DIR [--port P] [--parent-pid PID]
#                                          start PostgreSQL + FerretDB with data in DIR,
#                                          print "LISTENING mongodb://127.0.0.1:P/" and
#                                          stay in the foreground; stop both on SIGTERM,
#                                          SIGINT, or when PID exits
#   tools/docdb/docdb.sh start DIR [--port P]   the same in the background (pid in DIR/run)
#   tools/docdb/docdb.sh stop DIR
#   tools/docdb/docdb.sh status DIR
#
# Everything it builds goes under $DOCDB_HOME (default <target dir>/docdb): sources,
# stamps, the FerretDB binary, a template cluster. The extensions themselves are
# installed into the system PostgreSQL 15 tree, where PostgreSQL loads them from
# (needs root). Sources come from ../shared/docdb/tarballs when present (or
# $DOCDB_TARBALLS), else from the pinned upstream URLs below; every tarball is
# checked against its pinned SHA-256 either way.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PGV=15
PGBIN="/usr/lib/postgresql/$PGV/bin"
PG_CONFIG="$PGBIN/pg_config"
[[ -x "$PG_CONFIG" ]] || PG_CONFIG="$(command -v pg_config || echo /usr/bin/pg_config)"

# Pins. DocumentDB: FerretDB's fork at 0.107-0, the version FerretDB v2.7 expects.
FERRETDB_VERSION=v2.7.0
DOCUMENTDB_COMMIT=3f80da90a9e0b04f214183aa656c4fb0b4bc31e4
DOCUMENTDB_URL="https://github.com/FerretDB/documentdb/archive/$DOCUMENTDB_COMMIT.tar.gz"
DOCUMENTDB_SHA256=e284df4ac88bfe808d621e72fab81d3ceb7742a3b7dfe810dde3f3cfbf9f34b7
PGVECTOR_URL="https://github.com/pgvector/pgvector/archive/refs/tags/v0.8.0.tar.gz"
PGVECTOR_SHA256=958aa543a05a60c3696f7fc3bc5722be5a1c413b0ee0e1811f898128526b9c8a
# pg_cron >= 1.5: DocumentDB schedules "2 seconds" jobs, which bookworm's 1.4.2 rejects.
PGCRON_URL="https://github.com/citusdata/pg_cron/archive/refs/tags/v1.6.3.tar.gz"
PGCRON_SHA256=c525dbe88dc22c2a58fe82565bb9602690e1c05c4ffd3d2ccee971ac52d59904
# Bumped whenever a pin or a build flag changes, so stale stamps rebuild.
BUILD_ID="docdb-$DOCUMENTDB_COMMIT-pgvector0.8.0-pgcron1.6.3-ferretdb$FERRETDB_VERSION-1"

target="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$target" = /* ]] || target="$ROOT/$target"
DOCDB_HOME="${DOCDB_HOME:-$target/docdb}"
# Where pinned tarballs may already be: $DOCDB_TARBALLS, else the shared folder
# beside the checkout (or the workplace's, for a clone elsewhere).
TARBALLS="${DOCDB_TARBALLS:-$ROOT/../shared/docdb/tarballs}"
[[ -d "$TARBALLS" || -n "${DOCDB_TARBALLS:-}" ]] || TARBALLS=/work/shared/docdb/tarballs
JOBS="${JOBS:-$(nproc)}"

say() { echo "docdb: $*" >&2; }
die() { echo "docdb: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- build

APT_PACKAGES=(postgresql-$PGV postgresql-server-dev-$PGV postgresql-$PGV-postgis-3 postgresql-$PGV-rum
  libbson-dev libpcre2-dev libintelrdfpmath-dev libicu-dev libkrb5-dev pkg-config build-essential)

step_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $EUID -eq 0 ]] || die "missing Debian packages (${missing[*]}) and not root: install them, or set MONGODB_TEST_URI"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  }
}

# fetch NAME URL SHA256: $DOCDB_HOME/tarballs/NAME.tar.gz, checked
fetch() {
  local name=$1 url=$2 sum=$3 out="$DOCDB_HOME/tarballs/$1.tar.gz"
  if [[ ! -f "$out" ]]; then
    if [[ -f "$TARBALLS/$name.tar.gz" ]]; then
      cp "$TARBALLS/$name.tar.gz" "$out.part"
    else
      say "downloading $url"
      curl -fsSL --retry 3 -o "$out.part" "$url" || die "cannot download $url (put $name.tar.gz in $TARBALLS)"
    fi
    mv "$out.part" "$out"
  fi
  echo "$sum  $out" | sha256sum -c --quiet - || { rm -f "$out"; die "$name.tar.gz: checksum mismatch (want $sum)"; }
  if [[ ! -d "$DOCDB_HOME/src/$name" ]]; then
    mkdir -p "$DOCDB_HOME/src/$name.part"
    tar -xzf "$out" -C "$DOCDB_HOME/src/$name.part" --strip-components=1
    mv "$DOCDB_HOME/src/$name.part" "$DOCDB_HOME/src/$name"
  fi
}

stamp_ok() { [[ -f "$DOCDB_HOME/stamps/$1" && "$(cat "$DOCDB_HOME/stamps/$1")" == "$BUILD_ID" ]]; }
stamp() { echo "$BUILD_ID" >"$DOCDB_HOME/stamps/$1"; }

# make_ext STAMP DIR [make args...]: build and install one extension
make_ext() {
  local st=$1 dir=$2; shift 2
  local lib="$($PG_CONFIG --pkglibdir)/$st.so"
  stamp_ok "$st" && [[ -f "$lib" ]] && return 0
  [[ $EUID -eq 0 ]] || die "installing $st into $($PG_CONFIG --pkglibdir) needs root"
  local log="$DOCDB_HOME/build-$st.log"
  say "building $st (log: $log)"
  PKG_CONFIG_PATH="$DOCDB_HOME/pkgconfig" make -C "$dir" -j"$JOBS" PG_CONFIG="$PG_CONFIG" with_llvm=no "$@" >"$log" 2>&1 \
    && PKG_CONFIG_PATH="$DOCDB_HOME/pkgconfig" make -C "$dir" PG_CONFIG="$PG_CONFIG" with_llvm=no "$@" install >>"$log" 2>&1 \
    || { tail -30 "$log" >&2; die "building $st failed (log: $log)"; }
  stamp "$st"
}

step_ferretdb() {
  local bin="$DOCDB_HOME/bin/ferretdb"
  stamp_ok ferretdb && [[ -x "$bin" ]] && return 0
  local go
  go="$(command -v go || echo /usr/local/go/bin/go)"
  [[ -x "$go" ]] || die "FerretDB v2 is built with Go (>= 1.24): install Go or set MONGODB_TEST_URI"
  say "go install github.com/FerretDB/FerretDB/v2/cmd/ferretdb@$FERRETDB_VERSION"
  CGO_ENABLED=0 GOBIN="$DOCDB_HOME/bin" GOFLAGS=-trimpath "$go" install -ldflags="-s -w" \
    "github.com/FerretDB/FerretDB/v2/cmd/ferretdb@$FERRETDB_VERSION" >"$DOCDB_HOME/build-ferretdb.log" 2>&1 \
    || { tail -30 "$DOCDB_HOME/build-ferretdb.log" >&2; die "go install of FerretDB failed (log: $DOCDB_HOME/build-ferretdb.log)"; }
  stamp ferretdb
}

build() {
  local t0=$SECONDS
  mkdir -p "$DOCDB_HOME"/{src,tarballs,stamps,bin,pkgconfig}
  step_packages
  fetch pgvector "$PGVECTOR_URL" "$PGVECTOR_SHA256"
  fetch pg_cron "$PGCRON_URL" "$PGCRON_SHA256"
  fetch documentdb "$DOCUMENTDB_URL" "$DOCUMENTDB_SHA256"
  # Debian ships the Intel decimal library (libbidgcc000) without the pkg-config
  # module DocumentDB looks for.
  cat >"$DOCDB_HOME/pkgconfig/intelmathlib.pc" <<'PC'
prefix=/usr
libdir=${prefix}/lib/x86_64-linux-gnu
includedir=${prefix}/include
Name: intelmathlib
Description: Intel decimal floating point library (Debian libintelrdfpmath-dev)
Version: 2.0
Cflags: -I${includedir}
Libs: -L${libdir} -lbidgcc000
PC
  if dpkg-query -W -f='${Status}' postgresql-$PGV-cron 2>/dev/null | grep -q "install ok installed"; then
    say "removing postgresql-$PGV-cron (1.4, too old for DocumentDB)"; apt-get remove -y postgresql-$PGV-cron >/dev/null
  fi
  make_ext vector "$DOCDB_HOME/src/pgvector" OPTFLAGS=""
  make_ext pg_cron "$DOCDB_HOME/src/pg_cron"
  # Debian's libbson is 1.23; DocumentDB uses BSON_SUBTYPE_SENSITIVE (1.25+).
  make_ext pg_documentdb_core "$DOCDB_HOME/src/documentdb/pg_documentdb_core" "COPT=-DBSON_SUBTYPE_SENSITIVE=0x08 -Wno-error=switch"
  make_ext pg_documentdb "$DOCDB_HOME/src/documentdb/pg_documentdb" "COPT=-DBSON_SUBTYPE_SENSITIVE=0x08 -Wno-error=switch"
  step_ferretdb
  ((SECONDS - t0 > 2)) && say "built in $((SECONDS - t0)) s"
  return 0
}

built() {
  for s in vector pg_cron pg_documentdb_core pg_documentdb ferretdb; do stamp_ok $s || return 1; done
  [[ -x "$DOCDB_HOME/bin/ferretdb" && -f "$($PG_CONFIG --pkglibdir)/pg_documentdb.so" ]]
}

# ---------------------------------------------------------------- run

# PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
as_pg() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

PG_SETTINGS="
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'pg_cron,pg_documentdb_core,pg_documentdb'
cron.database_name = 'postgres'
max_connections = 300
ssl = off
# a throwaway test cluster: durability is the bot's business, not the test server's
fsync = off
synchronous_commit = off
full_page_writes = off
documentdb.enableBackgroundWorker = true
documentdb.enableBackgroundWorkerJobs = true
documentdb.enableCompact = true
documentdb.enableLetAndCollationForQueryMatch = true
documentdb.enableNowSystemVariable = true
documentdb.enableSortbyIdPushDownToPrimaryKey = true
documentdb.enableSchemaValidation = true
documentdb.enableBypassDocumentValidation = true
documentdb.enableUserCrud = true
documentdb.maxUserLimit = 100
"

# template: an initialized cluster with the extension created, copied for each run
# (initdb + CREATE EXTENSION take several seconds; a copy takes a fraction of one).
template() {
  local tpl="$DOCDB_HOME/template" stampf="$DOCDB_HOME/stamps/template"
  [[ -f "$tpl/PG_VERSION" ]] && stamp_ok template && return 0
  rm -rf "$tpl" "$tpl.part"; mkdir -p "$tpl.part"
  [[ $EUID -eq 0 ]] && chown postgres:postgres "$tpl.part"
  as_pg "$PGBIN/initdb" -D "$tpl.part" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  echo "$PG_SETTINGS" >>"$tpl.part/postgresql.conf"
  local sock; sock="$(mktemp -d /tmp/docdb-tpl.XXXXXX)"; [[ $EUID -eq 0 ]] && chown postgres:postgres "$sock"
  local tport; tport="$(free_port)"
  as_pg "$PGBIN/pg_ctl" -D "$tpl.part" -l "$sock/log" -o "-p $tport -k $sock" -w start >/dev/null
  PGOPTIONS="-c client_min_messages=warning" as_pg psql -h "$sock" -p "$tport" -d postgres -qAt -c "CREATE EXTENSION IF NOT EXISTS documentdb CASCADE;" >/dev/null \
    || { cat "$sock/log" >&2; die "CREATE EXTENSION documentdb failed"; }
  as_pg "$PGBIN/pg_ctl" -D "$tpl.part" -m fast -w stop >/dev/null
  rm -rf "$sock"
  mv "$tpl.part" "$tpl"
  echo "$BUILD_ID" >"$stampf"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run DIR PORT PARENT: foreground supervisor
run() {
  local dir=$1 port=$2 parent=$3
  built || build
  template
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  local pgdata="$dir/pgdata" sock="$dir/run" state="$dir/ferretdb-state"
  mkdir -p "$sock" "$state"
  if [[ ! -f "$pgdata/PG_VERSION" ]]; then cp -a "$DOCDB_HOME/template" "$pgdata"; fi
  if [[ $EUID -eq 0 ]]; then chown -R postgres:postgres "$pgdata" "$sock"; chmod 755 "$dir"; fi
  chmod 700 "$pgdata"
  rm -f "$pgdata/postmaster.pid"
  [[ "$port" == 0 ]] && port="$(free_port)"
  local pgport; pgport="$(free_port)"
  as_pg "$PGBIN/pg_ctl" -D "$pgdata" -l "$sock/postgres.log" -o "-p $pgport -k $sock" -w -t 60 start >/dev/null \
    || { tail -20 "$sock/postgres.log" >&2; die "PostgreSQL did not start (log: $sock/postgres.log)"; }
  local fpid=""
  stop_run() {
    trap - EXIT INT TERM
    [[ -n "$fpid" ]] && kill "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
    as_pg "$PGBIN/pg_ctl" -D "$pgdata" -m fast -w -t 20 stop >/dev/null 2>&1 || true
    exit 0
  }
  trap stop_run EXIT INT TERM
  "$DOCDB_HOME/bin/ferretdb" --postgresql-url="postgres://postgres@127.0.0.1:$pgport/postgres" \
    --listen-addr="127.0.0.1:$port" --no-auth --debug-addr=- --state-dir="$state" \
    --telemetry=disable --log-level=warn >"$dir/ferretdb.log" 2>&1 &
  fpid=$!
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$fpid" 2>/dev/null || { tail -20 "$dir/ferretdb.log" >&2; die "FerretDB exited (log: $dir/ferretdb.log)"; }
    sleep 0.1
  done
  echo "LISTENING mongodb://127.0.0.1:$port/"
  while kill -0 "$fpid" 2>/dev/null; do
    if [[ "$parent" != 0 ]] && ! kill -0 "$parent" 2>/dev/null; then break; fi
    sleep 0.5
  done
  stop_run
}

cmd="${1:-}"; shift || true
dir=""; port=0; parent=0
if [[ "$cmd" =~ ^(run|start|stop|status)$ ]]; then
  dir="${1:?usage: $0 $cmd DIR}"; shift
  while (($#)); do
    case "$1" in
      --port) port=$2; shift 2 ;;
      --parent-pid) parent=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
fi
case "$cmd" in
  build) build ;;
  built) built ;;
  run) run "$dir" "$port" "$parent" ;;
  start)
    mkdir -p "$dir"
    if [[ -f "$dir/docdb.pid" ]] && kill -0 "$(cat "$dir/docdb.pid")" 2>/dev/null; then
      say "already running (pid $(cat "$dir/docdb.pid"))"; cat "$dir/uri"; exit 0
    fi
    built || build
    nohup "$0" run "$dir" --port "$port" >"$dir/docdb.out" 2>"$dir/docdb.err" </dev/null &
    echo $! >"$dir/docdb.pid"
    for _ in $(seq 600); do
      if grep -q '^LISTENING ' "$dir/docdb.out" 2>/dev/null; then
        sed -n 's/^LISTENING //p' "$dir/docdb.out" | tee "$dir/uri"; exit 0
      fi
      kill -0 "$(cat "$dir/docdb.pid")" 2>/dev/null || { cat "$dir/docdb.err" >&2; die "the server did not start"; }
      sleep 0.1
    done
    die "the server did not start within 60 s (see $dir/docdb.err)" ;;
  stop)
    if [[ -f "$dir/docdb.pid" ]] && kill -0 "$(cat "$dir/docdb.pid")" 2>/dev/null; then
      pid=$(cat "$dir/docdb.pid"); kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      say "stopped"
    else say "not running"; fi
    rm -f "$dir/docdb.pid" "$dir/uri" ;;
  status)
    if [[ -f "$dir/docdb.pid" ]] && kill -0 "$(cat "$dir/docdb.pid")" 2>/dev/null; then
      echo "running (pid $(cat "$dir/docdb.pid")): $(cat "$dir/uri")"
    else echo "not running"; exit 1; fi ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; [[ -z "$cmd" || "$cmd" == -h || "$cmd" == --help ]] || exit 2 ;;
esac
