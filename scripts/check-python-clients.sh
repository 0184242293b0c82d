#!/usr/bin/env bash
# Points the official Python clients (segment-analytics-python, posthog) at a local beacon-collector
# with gzip on, and checks the report counts what they sent. Needs PyPI; not part of `cargo test`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build -q -p beacon-collector
bin="$root/target/debug/beacon-collector"
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q segment-analytics-python posthog
"$bin" serve --listen 127.0.0.1:0 --db "$work/events.sqlite" --key wk --key phc_test >"$work/serve.out" 2>&1 &
server=$!
for _ in $(seq 100); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
base=$(head -1 "$work/serve.out" | sed 's/^listening on //')

"$work/venv/bin/python" - "$base" <<'PY'
import sys
base = sys.argv[1]
errors = []
import segment.analytics as analytics
analytics.write_key, analytics.host, analytics.gzip = "wk", base, True
analytics.on_error = lambda e, batch: errors.append(("segment", repr(e)))
analytics.track("seg-inst", "Installation Started", {"product": "pyclients", "os": "debian", "os_version": "12"})
analytics.track(anonymous_id="seg-inst", event="Installation Success", properties={"product": "pyclients", "duration_ms": 1500})
analytics.identify("seg-inst", {"plan": "self-hosted"})
analytics.flush()
from posthog import Posthog
ph = Posthog("phc_test", host=base, gzip=True, on_error=lambda e, batch: errors.append(("posthog", repr(e))))
ph.capture("Installation Started", distinct_id="ph-inst", properties={"product": "pyclients", "os": "ubuntu", "os_version": "24.04"})
ph.capture("Installation Error", distinct_id="ph-inst", properties={"product": "pyclients", "step": "configure", "exit_code": 2})
ph.shutdown()
if errors:
    sys.exit(f"client errors: {errors}")
PY

"$bin" report --db "$work/events.sqlite" --format json | python3 -c '
import json, sys
p = json.load(sys.stdin)["products"][0]
got = {k: p["installations"][k] for k in ("started", "succeeded", "failed", "median_duration_ms")}
want = {"started": 2, "succeeded": 1, "failed": 1, "median_duration_ms": 1500}
print("report:", got)
sys.exit(0 if got == want and p["failing_steps"][0]["step"] == "configure" else "unexpected report")
'
echo "ok: segment-analytics-python and posthog-python accepted unchanged"
