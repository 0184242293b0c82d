#!/usr/bin/env bash
# Measures beacon-collector: the ingest rate (Segment batches of 100 events over HTTP on
# 127.0.0.1), also with the relay on (every event queued for PostHog and sent to a local sink),
# and over 1,000,000 stored events the time of `report` (the whole drill-down), of a filtered
# report (product, dates, CI counted), of the public page's first build, and of export, forget
# and a retention pass. With Debian's PostgreSQL installed (/usr/lib/postgresql/N/bin), also the
# ingest rate and the report time on a throwaway PostgreSQL server (`--db postgres://`). Prints a
# table; exits 1 if a target is missed.
#
#   scripts/bench-collector.sh            # full run (builds release, ~2 min after the build)
#   BATCHES=100 EVENTS=200000 scripts/bench-collector.sh   # quicker, smaller
set -euo pipefail

BATCHES=${BATCHES:-300}            # POSTs of 100 events each
EVENTS=${EVENTS:-1000000}          # events stored before timing the reports
PG_EVENTS=${PG_EVENTS:-200000}     # the same on PostgreSQL (seeding it is slower)
INGEST_TARGET=${INGEST_TARGET:-10000}   # events/s
REPORT_TARGET=${REPORT_TARGET:-1.0}     # seconds

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -q -p beacon-collector
bin="$root/target/release/beacon-collector"
work=$(mktemp -d)
server=""
sink=""
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg=()   # PostgreSQL refuses to run as root: its programs then run as nobody
[ "$(id -u)" = 0 ] && as_pg=(runuser -u nobody --)
pg_started=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    [ -n "$sink" ] && kill "$sink" 2>/dev/null
    [ -n "$pg_started" ] && "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# Starts `serve` with extra arguments on a fresh port; sets $server and $base.
start() {
    # Removed first: the shell truncates the file in the child, which may run after the loop below.
    rm -f "$work/serve.out"
    "$bin" serve --listen 127.0.0.1:0 "$@" >"$work/serve.out" 2>"$work/serve.err" &
    server=$!
    for _ in $(seq 200); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
    base=$(head -1 "$work/serve.out" | sed 's/^listening on //')
    [ -n "$base" ] || { echo "error: serve did not start: $(cat "$work/serve.err")" >&2; exit 1; }
}
stop() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""; }
# Seconds since $t0, two decimals.
since() { python3 -c "import time; print(f'{time.time() - $1:.2f}')"; }
now() { python3 -c "import time; print(time.time())"; }

# Posts $BATCHES Segment batches of 100 from 2 clients to $base; prints "events/s seconds".
ingest() {
python3 - "$base" "$BATCHES" <<'PY'
import base64, http.client, json, sys, threading, time, urllib.parse, uuid
base, batches = sys.argv[1], int(sys.argv[2])
host = urllib.parse.urlparse(base)
auth = "Basic " + base64.b64encode(b"bench:").decode()
props = {"os": "ubuntu", "os_version": "22.04", "arch": "x86_64", "cpu_count": 4, "memory_mb": 8192,
         "container": "none", "ci": False, "product": "bench", "product_version": "1.0.0",
         "beacon_version": "0.1.0", "step": "install-packages", "duration_ms": 1234}
def body():
    return json.dumps({"batch": [{"type": "track", "event": "Installation Started",
        "anonymousId": str(uuid.uuid4()), "messageId": str(uuid.uuid4()),
        "timestamp": "2026-11-20T10:00:00.000Z", "properties": props} for _ in range(100)]}).encode()
bodies = [body() for _ in range(batches)]
errors = []
def worker(chunk):
    try:
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        for b in chunk:
            conn.request("POST", "/v1/batch", b, {"Authorization": auth, "Content-Type": "application/json"})
            r = conn.getresponse(); r.read()
            if r.status != 200: errors.append(r.status)
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=worker, args=(bodies[i::2],)) for i in range(2)]
t0 = time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
dt = time.perf_counter() - t0
if errors: print(f"errors {errors[:5]}", file=sys.stderr); sys.exit(1)
print(f"{batches * 100 / dt:.0f} {dt:.2f}")
PY
}
count() { python3 -c "import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])" "$@"; }

# --- ingest ---------------------------------------------------------------------------------
start --db "$work/ingest.sqlite" --key bench
ingest=$(ingest)
stop
rate=${ingest% *}
stored=$(count "$work/ingest.sqlite" 'select count(*) from events')

# --- ingest and report on PostgreSQL (default settings: every commit is flushed) -------------
pg_rate="" pg_stored="" pg_report_secs=""
if [ -n "$pg_bin" ]; then
    chmod o+x "$work"
    mkdir "$work/pg"
    [ "$(id -u)" = 0 ] && chown nobody: "$work/pg"
    "${as_pg[@]}" "$pg_bin/initdb" -U postgres -A trust -E UTF8 --locale=C -D "$work/pg/data" >/dev/null
    pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w start \
        -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1" >/dev/null
    pg_started=1
    pg="postgres://postgres@127.0.0.1:$pg_port/postgres"
    start --db "$pg" --key bench
    pg_ingest=$(ingest)
    stop
    pg_rate=${pg_ingest% *}
    pg_stored=$("$pg_bin/psql" "$pg" -tAc 'select count(*) from events')
    "$bin" seed --db "$pg" --events "$PG_EVENTS" >/dev/null
    "$bin" report --db "$pg" --format json >/dev/null
    t0=$(now); "$bin" report --db "$pg" --format json >/dev/null; pg_report_secs=$(since "$t0")
fi

# --- ingest with the relay on (a local sink stands in for PostHog) ---------------------------
python3 scripts/bench-sink.py "$work/ports.json" &
sink=$!
for _ in $(seq 100); do [ -s "$work/ports.json" ] && break; sleep 0.05; done
sink_port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['http'])" "$work/ports.json")
start --db "$work/relay.sqlite" --key bench --forward "posthog=http://127.0.0.1:$sink_port" --forward-key phc_bench
relay=$(ingest)
relay_rate=${relay% *}
for _ in $(seq 600); do
    queued=$(count "$work/relay.sqlite" 'select count(*) from forward_queue')
    [ "$queued" = 0 ] && break
    sleep 0.1
done
forwarded=$(count "$work/relay.sqlite" "select forwarded from forward_status where target = 'posthog'")
stop

# --- reports over N events ------------------------------------------------------------------
"$bin" seed --db "$work/big.sqlite" --events "$EVENTS" >/dev/null
"$bin" report --db "$work/big.sqlite" --format json >/dev/null   # warm the page cache
t0=$(now); "$bin" report --db "$work/big.sqlite" --format json >"$work/report.json"; report_secs=$(since "$t0")
from=$(date -u -d '-14 days' +%F); to=$(date -u +%F)
t0=$(now)
"$bin" report --db "$work/big.sqlite" --format csv --product acme-server --from "$from" --to "$to" --include-ci >/dev/null
filtered_secs=$(since "$t0")
start --db "$work/big.sqlite" --public
t0=$(now); curl -sf "$base/public.json" >/dev/null; public_secs=$(since "$t0")
stop
t0=$(now); "$bin" export --db "$work/big.sqlite" --format jsonl >/dev/null; export_secs=$(since "$t0")
id=$(count "$work/big.sqlite" 'select installation_id from events order by id desc limit 1')
t0=$(now); "$bin" forget --db "$work/big.sqlite" --id "$id" >/dev/null; forget_secs=$(since "$t0")
t0=$(now); start --db "$work/big.sqlite" --retain 15d; retain_secs=$(since "$t0")
stop
size=$(stat -c %s "$bin")

check() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo ok; else echo MISSED; fi; }
v1=$(check "$rate >= $INGEST_TARGET")
v2=$(check "$report_secs < $REPORT_TARGET")
v3=$(check "$stored == $((BATCHES * 100))")
v4=$(check "$relay_rate >= $INGEST_TARGET")
v5=$(check "$forwarded == $((BATCHES * 100))")
v6=$(check "$filtered_secs < $REPORT_TARGET")
ok=0
for v in "$v1" "$v2" "$v3" "$v4" "$v5" "$v6"; do [ "$v" = ok ] || ok=1; done
row() { printf '%-44s %16s %12s %s\n' "$@"; }
row "measure" "value" "target" "result"
row "ingest (batches of 100, 2 clients)" "$rate ev/s" ">= $INGEST_TARGET" "$v1"
row "events stored by ingest" "$stored" "$((BATCHES * 100))" "$v3"
row "ingest with --forward posthog (relay on)" "$relay_rate ev/s" ">= $INGEST_TARGET" "$v4"
row "events forwarded to the sink" "$forwarded" "$((BATCHES * 100))" "$v5"
row "report over $EVENTS events (drill-down)" "${report_secs} s" "< ${REPORT_TARGET} s" "$v2"
row "report --product --from --to --include-ci" "${filtered_secs} s" "< ${REPORT_TARGET} s" "$v6"
row "public page, first build (/public.json)" "${public_secs} s"
row "export --format jsonl, all events" "${export_secs} s"
row "forget one installation" "${forget_secs} s"
row "serve --retain 15d: start incl. first pass" "${retain_secs} s"
if [ -n "$pg_bin" ]; then
    row "PostgreSQL: ingest (batches of 100, 2 clients)" "$pg_rate ev/s"
    row "PostgreSQL: events stored by ingest" "$pg_stored" "$((BATCHES * 100))"
    row "PostgreSQL: report over $PG_EVENTS seeded events" "${pg_report_secs} s"
else
    row "PostgreSQL" "not installed"
fi
row "release binary size" "$((size / 1024)) KiB"
exit $ok
