#!/usr/bin/env bash
# Seeds a collector database with realistic synthetic events, serves it on 127.0.0.1, and takes
# headless-Chromium screenshots of the report page (one product, with its drill-down) into
# docs/collector-report.png and of the public page into docs/collector-public.png.
#
# Needs Debian's chromium (apt-get install -y chromium). Usage: scripts/screenshot-report.sh [OUT_DIR]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/docs}
cd "$root"
command -v chromium >/dev/null || { echo "error: chromium not found"; echo "  hint: apt-get install -y chromium"; exit 1; }
cargo build -q -p beacon-collector
bin="$root/target/debug/beacon-collector"
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" seed --db "$work/events.sqlite" --events 6000 --days 30 --seed 7 >/dev/null
"$bin" serve --listen 127.0.0.1:0 --db "$work/events.sqlite" --public >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 100); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
base=$(head -1 "$work/serve.out" | sed 's/^listening on //')

mkdir -p "$out"
shot() { # FILE HEIGHT URL
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --hide-scrollbars \
    --screenshot="$1" --window-size="1200,$2" "$3" 2>"$work/chromium.log" >/dev/null || { cat "$work/chromium.log"; exit 1; }
  [ -s "$1" ] || { echo "error: chromium wrote no $1"; tail -5 "$work/chromium.log"; exit 1; }
  echo "wrote $1"
}
shot "$out/collector-report.png" 2150 "$base/?product=acme-server&since=30d"
shot "$out/collector-public.png" 1700 "$base/public"
