#!/usr/bin/env bash
# Draws the README's picture, docs/card.png: `bash scripts/render-card.sh [OUT]`.
#
# Seeds a fresh database on the test suite's MongoDB-wire server (the same one
# scripts/test.sh uses: MONGODB_TEST_URI, a mongod on PATH, or the bundled
# FerretDB) with a fixed two-week pattern of one member, relative to today,
# then runs the real binary on it (tests/it/readme_card.rs):
#
#   study-tracker render-ud --guild 1700000000000000001 --user 1700000000000000002 --out docs/card.png
#
# with TIMEZONE=UTC. Rerunnable: every run draws the same bars, under the
# dates of the last 14 days.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-$root/docs/card.png}"
[[ "$out" = /* ]] || out="$PWD/$out"
mkdir -p "$(dirname "$out")"
CARD_OUT="$out" cargo test --locked --test it readme_card::render_the_readme_card \
  -- --ignored --exact --nocapture
