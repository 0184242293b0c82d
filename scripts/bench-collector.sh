#!/usr/bin/env bash
# Measures beacon-collector: the ingest rate (Segment batches of 100 events over HTTP on
# 127.0.0.1; median of 5 runs), also with the relay on (every event queued for PostHog and sent to a local sink);
# then, over databases of 200,000, 2,000,000 and 10,000,000 events seeded over 365 days (a vendor's
# installs), the time and peak memory (RSS) of `report` (the whole drill-down, and the last 30
# days) and the bytes stored per event; over the 2,000,000 one the public page's first build,
# export, forget and a retention pass. With Debian's PostgreSQL installed
# (/usr/lib/postgresql/N/bin), also the ingest rate and the report on a throwaway PostgreSQL
# server (`--db postgres://`). Prints a table; exits 1 if a target is missed.
#
#   scripts/bench-collector.sh                 # full run (~15 min after the build; ~12 GB of disk)
#   SIZES="200000 2000000" PG_EVENTS=200000 BATCHES=100 scripts/bench-collector.sh   # quicker
set -euo pipefail

BATCHES=${BATCHES:-300}                     # POSTs of 100 events each
SIZES=${SIZES:-"200000 2000000 10000000"}  # events stored before timing the reports
PG_EVENTS=${PG_EVENTS:-2000000}             # the same on PostgreSQL
INGEST_TARGET=${INGEST_TARGET:-30000}       # events/s
REPORT_TARGET=${REPORT_TARGET:-0.100}       # seconds, at the largest size
RSS_TARGET=${RSS_TARGET:-150}               # MiB, at the largest size
GROWTH_TARGET=${GROWTH_TARGET:-1.5}         # report time at the largest size / at the smallest
BYTES_TARGET=${BYTES_TARGET:-250}           # bytes stored per event

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
    for _ in $(seq 1200); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
    base=$(head -1 "$work/serve.out" | sed 's/^listening on //')
    [ -n "$base" ] || { echo "error: serve did not start: $(cat "$work/serve.err")" >&2; exit 1; }
}
stop() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""; }
# Seconds since $t0, two decimals.
since() { python3 -c "import time; print(f'{time.time() - $1:.2f}')"; }
now() { python3 -c "import time; print(time.time())"; }
# Runs a command 5 times (output discarded); prints the median seconds (3 decimals) and the
# largest peak RSS (MiB) of its runs.
measure() {
python3 - "$@" <<'PY'
import os, statistics, subprocess, sys, time
times, rss = [], 0
for _ in range(5):
    t0 = time.perf_counter()
    p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    times.append(time.perf_counter() - t0)
    if status != 0: sys.exit(f"failed: {sys.argv[1:]}")
    rss = max(rss, usage.ru_maxrss)
print(f"{statistics.median(times):.3f} {rss // 1024}")
PY
}

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

# --- ingest: 5 runs, each into a new database; the median counts (one run varies by 20% here) -
rates=()
stored=""
for run in 1 2 3 4 5; do
    start --db "$work/ingest.sqlite" --key bench
    ingest=$(ingest)
    stop
    rates+=("${ingest% *}")
    n=$(count "$work/ingest.sqlite" 'select count(*) from events')
    if [ -z "$stored" ] || [ "$n" -lt "$stored" ]; then stored=$n; fi
    rm -f "$work/ingest.sqlite"*
done
sorted=$(printf '%s\n' "${rates[@]}" | sort -n)
rate=$(sed -n 3p <<<"$sorted")
rate_range="$(head -1 <<<"$sorted")-$(tail -1 <<<"$sorted")"

# --- ingest and report on PostgreSQL (default settings: every commit is flushed) -------------
pg_rate="" pg_stored="" pg_report="" pg_bytes=""
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
    "$pg_bin/psql" "$pg" -qc 'truncate events, installations, instances, tallies, error_counts, day_counts, active_hours' >/dev/null
    "$bin" seed --db "$pg" --events "$PG_EVENTS" --days 365 >/dev/null
    "$pg_bin/psql" "$pg" -qc 'vacuum analyze' >/dev/null
    pg_report=$(measure "$bin" report --db "$pg" --format json)
    pg_bytes=$("$pg_bin/psql" "$pg" -tAc "select pg_database_size('postgres') / $PG_EVENTS")
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
declare -A report_at rss_at recent_at bytes_at
read -r -a sizes <<<"$SIZES"
small=${sizes[0]}
large=${sizes[${#sizes[@]}-1]}
mid=${sizes[1]:-$small}
for n in "${sizes[@]}"; do
    db="$work/seed-$n.sqlite"
    "$bin" seed --db "$db" --events "$n" --days 365 >/dev/null
    read -r secs rss < <(measure "$bin" report --db "$db" --format json)
    report_at[$n]=$secs rss_at[$n]=$rss
    read -r secs _ < <(measure "$bin" report --db "$db" --format json --since 30d)
    recent_at[$n]=$secs
    bytes_at[$n]=$(( $(stat -c %s "$db") / n ))
    [ "$n" = "$mid" ] || rm -f "$db"   # the rest of the measures take the middle one
done
big="$work/seed-$mid.sqlite"
start --db "$big" --public
t0=$(now); curl -sf "$base/public.json" >/dev/null; public_secs=$(since "$t0")
stop
t0=$(now); "$bin" export --db "$big" --format jsonl >/dev/null; export_secs=$(since "$t0")
id=$(count "$big" 'select installation_id from events order by id desc limit 1')
t0=$(now); "$bin" forget --db "$big" --id "$id" >/dev/null; forget_secs=$(since "$t0")
t0=$(now); "$bin" rebuild --db "$big" >/dev/null; rebuild_secs=$(since "$t0")
t0=$(now); start --db "$big" --retain 15d; retain_secs=$(since "$t0")
stop

check() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo ok; else echo MISSED; fi; }
ok=0
verdict() { local v; v=$(check "$1"); [ "$v" = ok ] || ok=1; echo "$v"; }
row() { printf '%-48s %16s %12s %s\n' "$@"; }
row "measure" "value" "target" "result"
row "ingest (batches of 100, 2 clients; median of 5)" "$rate ev/s" ">= $INGEST_TARGET" "$(verdict "$rate >= $INGEST_TARGET")"
row "  its 5 runs, slowest-fastest" "$rate_range ev/s"
row "events stored by ingest (fewest of a run)" "$stored" "$((BATCHES * 100))" "$(verdict "$stored == $((BATCHES * 100))")"
row "ingest with --forward posthog (relay on)" "$relay_rate ev/s"
row "events forwarded to the sink" "$forwarded" "$((BATCHES * 100))" "$(verdict "$forwarded == $((BATCHES * 100))")"
for n in "${sizes[@]}"; do
    if [ "$n" = "$large" ]; then
        row "report over $n events" "${report_at[$n]} s" "<= ${REPORT_TARGET} s" "$(verdict "${report_at[$n]} <= $REPORT_TARGET")"
        row "  its peak memory (RSS)" "${rss_at[$n]} MiB" "<= $RSS_TARGET MiB" "$(verdict "${rss_at[$n]} <= $RSS_TARGET")"
        row "  its time / the time over $small" \
            "$(python3 -c "print(f'{${report_at[$n]} / ${report_at[$small]}:.2f}')")x" "<= ${GROWTH_TARGET}x" \
            "$(verdict "${report_at[$n]} <= $GROWTH_TARGET * ${report_at[$small]}")"
        row "  bytes stored per event" "${bytes_at[$n]} B" "<= $BYTES_TARGET B" "$(verdict "${bytes_at[$n]} <= $BYTES_TARGET")"
    else
        row "report over $n events" "${report_at[$n]} s"
        row "  its peak memory (RSS)" "${rss_at[$n]} MiB"
        row "  bytes stored per event" "${bytes_at[$n]} B"
    fi
    row "  report --since 30d" "${recent_at[$n]} s"
done
row "public page, first build ($mid events)" "${public_secs} s"
row "export --format jsonl ($mid events)" "${export_secs} s"
row "forget one installation ($mid events)" "${forget_secs} s"
row "rebuild the aggregates ($mid events)" "${rebuild_secs} s"
row "serve --retain 15d: start incl. first pass" "${retain_secs} s"
if [ -n "$pg_bin" ]; then
    row "PostgreSQL: ingest (batches of 100, 2 clients)" "$pg_rate ev/s"
    row "PostgreSQL: events stored by ingest" "$pg_stored" "$((BATCHES * 100))" "$(verdict "$pg_stored == $((BATCHES * 100))")"
    row "PostgreSQL: report over $PG_EVENTS events" "${pg_report% *} s"
    row "  its peak memory (RSS)" "${pg_report#* } MiB"
    row "  bytes stored per event (whole database)" "$pg_bytes B"
else
    row "PostgreSQL" "not installed"
fi
row "release binary size" "$(( $(stat -c %s "$bin") / 1024 )) KiB"
exit $ok
