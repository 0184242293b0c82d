#!/usr/bin/env bash
# Measures beacon-collector's ingest rate (Segment batches of 100 events over HTTP on 127.0.0.1)
# and the time of `report` over 1,000,000 stored events. Prints a table; exits 1 if a target is missed.
#
#   scripts/bench-collector.sh            # full run (builds release, ~1 min after the build)
#   BATCHES=100 EVENTS=200000 scripts/bench-collector.sh   # quicker, smaller
set -euo pipefail

BATCHES=${BATCHES:-300}            # POSTs of 100 events each
EVENTS=${EVENTS:-1000000}          # events stored before timing `report`
INGEST_TARGET=${INGEST_TARGET:-10000}   # events/s
REPORT_TARGET=${REPORT_TARGET:-2.0}     # seconds

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -q -p beacon-collector
bin="$root/target/release/beacon-collector"
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# --- ingest ---------------------------------------------------------------------------------
"$bin" serve --listen 127.0.0.1:0 --db "$work/ingest.sqlite" --key bench >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 100); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
base=$(head -1 "$work/serve.out" | sed 's/^listening on //')

ingest=$(python3 - "$base" "$BATCHES" <<'PY'
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
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    for b in chunk:
        conn.request("POST", "/v1/batch", b, {"Authorization": auth, "Content-Type": "application/json"})
        r = conn.getresponse(); r.read()
        if r.status != 200: errors.append(r.status)
threads = [threading.Thread(target=worker, args=(bodies[i::2],)) for i in range(2)]
t0 = time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
dt = time.perf_counter() - t0
if errors: print(f"errors {errors[:5]}", file=sys.stderr); sys.exit(1)
print(f"{batches * 100 / dt:.0f} {dt:.2f}")
PY
)
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""
rate=${ingest% *}; ingest_secs=${ingest#* }
stored=$(python3 -c "import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "$work/ingest.sqlite")

# --- report over N events -------------------------------------------------------------------
"$bin" seed --db "$work/big.sqlite" --events "$EVENTS" >/dev/null
"$bin" report --db "$work/big.sqlite" --format json >/dev/null   # warm the page cache
t0=$(date +%s.%N)
"$bin" report --db "$work/big.sqlite" --format json >"$work/report.json"
t1=$(date +%s.%N)
report_secs=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
size=$(stat -c %s "$bin")

check() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo ok; else echo MISSED; fi; }
v1=$(check "$rate >= $INGEST_TARGET")
v2=$(check "$report_secs < $REPORT_TARGET")
v3=$(check "$stored == $((BATCHES * 100))")
ok=0
for v in "$v1" "$v2" "$v3"; do [ "$v" = ok ] || ok=1; done
printf '%-34s %16s %12s %s\n' "measure" "value" "target" "result"
printf '%-34s %16s %12s %s\n' "ingest (batches of 100, 2 clients)" "$rate ev/s" ">= $INGEST_TARGET" "$v1"
printf '%-34s %16s %12s %s\n' "events stored by ingest" "$stored" "$((BATCHES * 100))" "$v3"
printf '%-34s %16s %12s %s\n' "report over $EVENTS events" "${report_secs} s" "< ${REPORT_TARGET} s" "$v2"
printf '%-34s %16s\n' "release binary size" "$((size / 1024)) KiB"
exit $ok
