#!/usr/bin/env bash
# Seeds a collector database with realistic synthetic events, serves it on 127.0.0.1, and takes a
# headless-Chromium screenshot of the report page into docs/collector-report.png.
#
# Needs Debian's chromium (apt-get install -y chromium). Usage: scripts/screenshot-report.sh [OUT.png]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/docs/collector-report.png}
cd "$root"
command -v chromium >/dev/null || { echo "error: chromium not found"; echo "  hint: apt-get install -y chromium"; exit 1; }
cargo build -q -p beacon-collector
bin="$root/target/debug/beacon-collector"
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" seed --db "$work/events.sqlite" --events 6000 --days 30 --seed 7 >/dev/null
"$bin" serve --listen 127.0.0.1:0 --db "$work/events.sqlite" >"$work/serve.out" 2>&1 &
server=$!
for _ in $(seq 100); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
base=$(head -1 "$work/serve.out" | sed 's/^listening on //')

mkdir -p "$(dirname "$out")"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --hide-scrollbars \
  --screenshot="$out" --window-size=1200,1600 "$base/" 2>"$work/chromium.log" >/dev/null
echo "wrote $out"
