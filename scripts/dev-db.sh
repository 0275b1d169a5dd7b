#!/usr/bin/env bash
# A local database for trying the bot, without an Atlas account or a container
# engine: FerretDB v2 on DocumentDB (PostgreSQL 15), the server the tests use.
#
#   bash scripts/dev-db.sh            start it (builds it first: about 3 minutes
#                                     the first time; needs root for the Debian
#                                     packages and the PostgreSQL extensions)
#   bash scripts/dev-db.sh stop       stop it (the data stays)
#   bash scripts/dev-db.sh status     say whether it runs, and where
#
# It listens on 127.0.0.1:${DEV_DB_PORT:-27017} and keeps its data under
# ./data/dev-db (DEV_DB_DIR to change). Then run the bot with the printed URI:
#   MONGODB_URI=mongodb://127.0.0.1:27017/ cargo run --release
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${DEV_DB_DIR:-$root/data/dev-db}"
port="${DEV_DB_PORT:-27017}"
docdb="$root/tools/docdb/docdb.sh"
case "${1:-start}" in
  start)
    uri="$(bash "$docdb" start "$dir" --port "$port")"
    echo "dev-db: FerretDB v2 + DocumentDB running, data in $dir"
    echo "dev-db: MONGODB_URI=$uri"
    echo "dev-db: stop it with: bash scripts/dev-db.sh stop"
    ;;
  stop) bash "$docdb" stop "$dir" ;;
  status) bash "$docdb" status "$dir" ;;
  -h | --help | help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "dev-db: unknown command '$1' (start, stop, status)" >&2; exit 2 ;;
esac
