#!/usr/bin/env bash
# Benchmarks install-beacon against its targets on this machine and prints a table; exits 1 when a
# target is missed. Everything talks to 127.0.0.1 (scripts/bench-sink.py). Speed is checked here,
# never in the test suite.
#
#   scripts/bench.sh                       builds --release for x86_64-unknown-linux-musl (the static
#                                          binary that ships; the host target when musl is not
#                                          installed) and benchmarks it
#   BENCH_BIN=path scripts/bench.sh        benchmarks another build (e.g. target/release/install-beacon)
#   BENCH_RUNS=100 scripts/bench.sh        more runs per measurement (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${BENCH_RUNS:-50}

# --- tools -------------------------------------------------------------------------------------
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v strace >/dev/null || need+=(strace)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v python3 >/dev/null || { echo "bench: python3 is needed for the local sink" >&2; exit 1; }

if [ -z "${BENCH_BIN:-}" ]; then
  musl=x86_64-unknown-linux-musl
  if [ "$(uname -m)" = x86_64 ] && rustup target list --installed 2>/dev/null | grep -qx $musl; then
    cargo build --release --locked --quiet --target $musl
    BIN=$PWD/target/$musl/release/install-beacon
  else
    cargo build --release --locked --quiet
    BIN=$PWD/target/release/install-beacon
  fi
else
  BIN=$(realpath "$BENCH_BIN")
fi

# --- local endpoints ---------------------------------------------------------------------------
work=$(mktemp -d)
sink_pid=""
cleanup() {
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
python3 scripts/bench-sink.py "$work/ports.json" &
sink_pid=$!
for _ in $(seq 100); do [ -s "$work/ports.json" ] && break; sleep 0.05; done
port() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/ports.json" "$1"; }
URL=http://127.0.0.1:$(port http)
HOLE=http://127.0.0.1:$(port blackhole)
REFUSED=http://127.0.0.1:$(port refused)
posts() { curl -s "$URL/count"; }

state=$work/state
common=(--product demo --key k --state-dir "$state" --quiet)
send=("$BIN" "${common[@]}" --endpoint "$URL" started)
# One real call creates the installation ID, and gives curl the exact body we send.
"${send[@]}"
curl -s "$URL/last" >"$work/event.json"
q() { printf '%q ' "$@"; } # a command line for hyperfine -N, which splits it like a shell

has_background=false
"$BIN" --help | grep -q -- '--background' && has_background=true
has_flush=false
"$BIN" --help | grep -qE '^ +flush( |$)' && has_flush=true

# --- timings, side by side ----------------------------------------------------------------------
cmds=(
  -n send "$(q "${send[@]}")"
  -n curl "$(q curl -s -X POST -H 'Content-Type: application/json' --data "@$work/event.json" "$URL")"
  -n refused "$(q "$BIN" "${common[@]}" --endpoint "$REFUSED" started)"
  -n dry-run "$(q "$BIN" "${common[@]}" --endpoint "$URL" --dry-run started)"
  -n opted-out "$(q env DO_NOT_TRACK=1 "${send[@]}")"
  -n env-only "$(q env DO_NOT_TRACK=1 true)"
  -n true true # this machine's floor for starting any (dynamically linked) process
)
if $has_background; then
  cmds+=(-n background "$(q "$BIN" "${common[@]}" --endpoint "$URL" --background started)")
fi
echo "== hyperfine: $RUNS runs each" >&2
hyperfine -N --warmup 5 --runs "$RUNS" --style basic --export-json "$work/fast.json" "${cmds[@]}" >&2
echo "== hyperfine: black-holed endpoint, --timeout 300ms" >&2
hyperfine -N --runs 5 --style basic --export-json "$work/hole.json" \
  -n blackhole "$(q "$BIN" "${common[@]}" --endpoint "$HOLE" --timeout 300ms started)" >&2

flush_ms="" flush_requests=""
if $has_flush; then
  fstate=$work/flush
  fcommon=(--product demo --key k --state-dir "$fstate" --quiet)
  "$BIN" "${fcommon[@]}" --endpoint "$REFUSED" started || true
  if [ -s "$fstate/outbox.jsonl" ]; then
    python3 - "$fstate/outbox.jsonl" "$work/outbox.full" <<'EOF'
import json, sys, uuid
line = open(sys.argv[1]).readline()
ids = {"message_id", "messageId", "uuid"}
def fresh(v):
    if isinstance(v, dict):
        return {k: (str(uuid.uuid4()) if k in ids else fresh(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [fresh(x) for x in v]
    return v
event = json.loads(line)
with open(sys.argv[2], "w") as out:
    for _ in range(1000):
        out.write(json.dumps(fresh(event)) + "\n")
EOF
    before=$(posts)
    echo "== hyperfine: flush of 1,000 queued events" >&2
    hyperfine --runs 5 --style basic --export-json "$work/flush.json" \
      --prepare "cp $(q "$work/outbox.full") $(q "$fstate/outbox.jsonl")" \
      -n flush "$(q "$BIN" "${fcommon[@]}" --endpoint "$URL" flush)" >&2
    after=$(posts)
    flush_requests=$(((after - before) / 5))
    left=0
    [ ! -f "$fstate/outbox.jsonl" ] || left=$(wc -l <"$fstate/outbox.jsonl")
    [ "$left" = 0 ] || flush_requests="$flush_requests (outbox left with $left lines)"
    flush_ms=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['median']*1000)" "$work/flush.json")
  else
    flush_requests="n/a (a refused call queued nothing in outbox.jsonl)"
  fi
fi

# --- child processes and file opens (strace) ----------------------------------------------------
execs() { # number of execve calls made by a command and all its children
  strace -f -qq -e trace=execve -o "$work/ex.txt" "$@" >/dev/null 2>&1 || true
  grep -c 'execve(' "$work/ex.txt"
}
exec_started=$(execs "${send[@]}")
exec_dry=$(execs "$BIN" "${common[@]}" --endpoint "$URL" --dry-run started)
exec_optout=$(DO_NOT_TRACK=1 execs "${send[@]}")
exec_refused=$(execs "$BIN" "${common[@]}" --endpoint "$REFUSED" started)
strace -qq -e trace=openat,open -o "$work/open.txt" "${send[@]}" >/dev/null 2>&1 || true
opens=$(grep -cE '^open(at)?\(' "$work/open.txt")
opened=$(grep -oE '"[^"]*"' "$work/open.txt" | tr -d '"' | tr '\n' ' ')

# --- memory -------------------------------------------------------------------------------------
rss_kib=$(/usr/bin/time -f '%M' "${send[@]}" 2>&1 >/dev/null | tail -1)

# --- table --------------------------------------------------------------------------------------
export exec_started exec_dry exec_optout exec_refused opens opened rss_kib flush_ms flush_requests \
  has_background has_flush
python3 - "$work/fast.json" "$work/hole.json" <<'EOF'
import json, os, sys

res = {}
for path in sys.argv[1:]:
    for r in json.load(open(path))["results"]:
        res[r["command"]] = r["median"] * 1000  # ms

env = os.environ
rows, failed = [], False

def row(name, ours, ref, target, ok):
    global failed
    if ok is False:
        failed = True
    rows.append((name, ours, ref, target, {True: "PASS", False: "FAIL", None: "n/a"}[ok]))

ms = lambda v: f"{v:.2f} ms"
send, curl = res["send"], res["curl"]
row("sending call (median)", ms(send), f"curl {ms(curl)}", f"ratio {send / curl:.2f} <= 0.5", send <= 0.5 * curl)
row("refused port", ms(res["refused"]), "", "< 10 ms", res["refused"] < 10)
row("black-holed, --timeout 300ms", ms(res["blackhole"]), "", "< 400 ms", res["blackhole"] < 400)
row("--dry-run", ms(res["dry-run"]), f"/bin/true {ms(res['true'])}", "< 2 ms", res["dry-run"] < 2)
opt, env_only = res["opted-out"], res["env-only"]
row("DO_NOT_TRACK=1 (via env)", ms(opt), f"env alone {ms(env_only)}",
    "< 2 ms (less env alone)", opt - env_only < 2)
if env["has_background"] == "true":
    row("--background", ms(res["background"]), "", "< 5 ms", res["background"] < 5)
else:
    row("--background", "n/a (not built yet)", "", "< 5 ms", None)
if env["has_flush"] != "true":
    row("flush 1,000 queued events", "n/a (not built yet)", "", "< 1 s, <= 10 requests", None)
elif env["flush_ms"]:
    reqs = env["flush_requests"]
    ok = float(env["flush_ms"]) < 1000 and reqs.isdigit() and int(reqs) <= 10
    row("flush 1,000 queued events", f"{float(env['flush_ms']):.0f} ms, {reqs} requests", "",
        "< 1 s, <= 10 requests", ok)
else:
    row("flush 1,000 queued events", env["flush_requests"], "", "< 1 s, <= 10 requests", False)
for name in ["started", "dry", "optout", "refused"]:
    n = int(env[f"exec_{name}"])
    label = {"started": "started", "dry": "--dry-run", "optout": "opted out", "refused": "refused"}[name]
    row(f"execve calls: {label}", str(n), "", "1 (no child process)", n == 1)
row("file opens: sending call", env["opens"], "", "<= 12", int(env["opens"]) <= 12)
rss = int(env["rss_kib"])
row("peak RSS: sending call", f"{rss / 1024:.1f} MiB", "", "< 8 MiB", rss < 8 * 1024)

head = ("measurement", "ours", "reference", "target", "result")
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(5)]
line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
print(line(head))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for r in rows:
    print(line(r))
print()
print(f"files opened by a sending call: {env['opened'].strip()}")
sys.exit(1 if failed else 0)
EOF
