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
#   BENCH_BASELINE=path scripts/bench.sh   also times another build's HTTPS calls in the same rounds
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${BENCH_RUNS:-50}
# Certificates come from the bench's own CA only; a machine-wide SSL_CERT_DIR would add its cost to
# every HTTPS row (the row "SSL_CERT_DIR=/etc/ssl/certs" measures that case on its own).
unset SSL_CERT_DIR SSL_CERT_FILE

# --- tools -------------------------------------------------------------------------------------
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v strace >/dev/null || need+=(strace)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v nginx >/dev/null || need+=(nginx-light)
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
  [ -s "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# A local CA and a certificate for 127.0.0.1 it signed, for the HTTPS sink; curl trusts the system
# bundle plus that CA, as a machine behind TLS inspection does.
tls=$work/tls
mkdir -p "$tls/certs"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=bench CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req "${ec[@]}" -subj "/CN=127.0.0.1" -keyout "$tls/key.pem" -out "$tls/req.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls/ext"
openssl x509 -req -in "$tls/req.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
  -extfile "$tls/ext" -out "$tls/cert.pem" 2>/dev/null
cat /etc/ssl/certs/ca-certificates.crt "$tls/ca.pem" >"$tls/bundle.pem" 2>/dev/null || cp "$tls/ca.pem" "$tls/bundle.pem"
cp "$tls/ca.pem" "$tls/certs/ca-certificates.crt"
export SSL_CERT_FILE=$tls/ca.pem # install-beacon adds it to the bundled and system roots

python3 scripts/bench-sink.py "$work/ports.json" &
sink_pid=$!
for _ in $(seq 100); do [ -s "$work/ports.json" ] && break; sleep 0.05; done
port() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/ports.json" "$1"; }
URL=http://127.0.0.1:$(port http)
HOLE=http://127.0.0.1:$(port blackhole)
REFUSED=http://127.0.0.1:$(port refused)
# HTTPS is served by nginx (TLS 1.3, the run's certificate), as a real collector behind it would be.
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp;
  proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp;
  scgi_temp_path $work/nginx/tmp;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $tls/cert.pem;
    ssl_certificate_key $tls/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { default_type application/json; return 200 '{}'; }
  }
}
NGINX
nginx -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf"
HTTPS=https://127.0.0.1:$nginx_port
SYNDROP=http://127.0.0.1:$(port syndrop)
posts() { curl -s "$URL/count"; }

state=$work/state
common=(--product demo --key k --state-dir "$state" --quiet)
send=("$BIN" "${common[@]}" --endpoint "$URL" started)
# One real call creates the installation ID, and gives curl the exact body we send.
"${send[@]}"
curl -s "$URL/last" >"$work/event.json"
q() { printf '%q ' "$@"; } # a command line for hyperfine -N, which splits it like a shell
"$BIN" --product demo --key k --state-dir "$state" --endpoint "$HTTPS" --strict started ||
  { echo "bench: install-beacon could not post to nginx over HTTPS" >&2; exit 1; }
curl -sf --cacert "$tls/bundle.pem" -X POST --data "@$work/event.json" "$HTTPS" >/dev/null ||
  { echo "bench: curl could not post to nginx over HTTPS" >&2; exit 1; }

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
# Its own state directory, cleared before each run: within an outage a call would not try at all.
bstate=$work/blackhole-state
hyperfine -N --runs 5 --style basic --export-json "$work/hole.json" --prepare "rm -rf $(q "$bstate")" \
  -n blackhole "$(q "$BIN" --product demo --key k --state-dir "$bstate" --quiet --endpoint "$HOLE" \
    --timeout 300ms started)" >&2

echo "== hyperfine: ten calls in a row to a port that drops SYNs, --timeout 1s" >&2
hstate=$work/hole-state
ten=$(printf '%q --product demo --key k --state-dir %q --quiet --endpoint %q --timeout 1s started; ' \
  "$BIN" "$hstate" "$SYNDROP")
# The pause lets the previous run's detached retry end before its state is removed.
hyperfine --runs 3 --style basic --export-json "$work/ten.json" --prepare "sleep 1.2; rm -rf $(q "$hstate")" \
  -n ten-blackholed "for i in 1 2 3 4 5 6 7 8 9 10; do $ten done" >&2

echo "== HTTPS against nginx: $RUNS alternating rounds, with and without SSL_CERT_DIR, and the floor" >&2
json_argv() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }
https_send=("$BIN" "${common[@]}" --endpoint "$HTTPS" started)
https_curl=(curl -s --cacert "$tls/bundle.pem" -X POST -H 'Content-Type: application/json'
  --data "@$work/event.json" "$HTTPS")
certdir='{"SSL_CERT_DIR": "/etc/ssl/certs"}'
python3 scripts/bench-https.py "$work/https.json" "$RUNS" "$HTTPS" "$tls/ca.pem" "$work/event.json" \
  "send-https=$(json_argv "${https_send[@]}")" \
  "curl-https=$(json_argv "${https_curl[@]}")" \
  "send-https-certdir={\"env\": $certdir, \"argv\": $(json_argv "${https_send[@]}")}" \
  "curl-https-certdir={\"env\": $certdir, \"argv\": $(json_argv "${https_curl[@]}")}" \
  "version=$(json_argv "$BIN" --version)" \
  ${BENCH_BASELINE:+"base-https=$(json_argv "$(realpath "$BENCH_BASELINE")" "${common[@]}" --endpoint "$HTTPS" started)"} \
  ${BENCH_BASELINE:+"base-https-certdir={\"env\": $certdir, \"argv\": $(json_argv "$(realpath "$BENCH_BASELINE")" \
    "${common[@]}" --endpoint "$HTTPS" started)}"}

# Offline (a network namespace with no network) needs root and unshare.
has_ns=false
[ "$(id -u)" = 0 ] && unshare -n -m true 2>/dev/null && has_ns=true
if $has_ns; then
  ostate=$work/offline-state
  echo "== hyperfine: offline (unshare -n), endpoint by name" >&2
  hyperfine -N --warmup 3 --runs "$RUNS" --style basic --export-json "$work/offline.json" \
    --prepare "rm -rf $(q "$ostate")" \
    -n offline "$(q unshare -n "$BIN" --product demo --key k --state-dir "$ostate" --quiet \
      --endpoint https://beacon.example.com started)" \
    -n unshare-alone "$(q unshare -n true)" >&2
fi

flush_ms="" flush_requests=""
if $has_flush; then
  fstate=$work/flush
  fcommon=(--product demo --key k --state-dir "$fstate" --quiet)
  "$BIN" "${fcommon[@]}" --endpoint "$REFUSED" started || true
  if [ -s "$fstate/outbox.jsonl" ]; then
    # Queued for the refused port, re-addressed to the sink: a call delivers only the events
    # queued for its own destination.
    python3 - "$fstate/outbox.jsonl" "$work/outbox.full" "$URL" <<'EOF'
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
event["destination"]["endpoint"] = sys.argv[3]
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
# An HTTPS call whose chain verifies against the bundled roots and SSL_CERT_FILE reads no other CA.
SSL_CERT_DIR=/etc/ssl/certs strace -qq -e trace=openat,open -o "$work/open-https.txt" "${https_send[@]}" \
  >/dev/null 2>&1 || true
https_ca_reads=$(grep -E '^open(at)?\(' "$work/open-https.txt" | grep -cE '"/etc/ssl/|"/etc/pki/|"/usr/local/share/certs/' || true)

# --- memory -------------------------------------------------------------------------------------
rss_kib=$(/usr/bin/time -f '%M' "${send[@]}" 2>&1 >/dev/null | tail -1)

# --- table --------------------------------------------------------------------------------------
export exec_started exec_dry exec_optout exec_refused opens opened rss_kib flush_ms flush_requests \
  has_background has_flush has_ns https_ca_reads
extra=()
$has_ns && extra=("$work/offline.json")
python3 - "$work/fast.json" "$work/hole.json" "$work/ten.json" "$work/https.json" "${extra[@]}" <<'EOF'
import json, os, sys

res, cpu = {}, {}
for path in sys.argv[1:]:
    for r in json.load(open(path))["results"]:
        res[r["command"]] = r["median"] * 1000  # ms
        cpu[r["command"]] = r.get("cpu_median", 0) * 1000  # median CPU time, ms: steadier under load

env = os.environ
rows, failed = [], False

def row(name, ours, ref, target, ok):
    global failed
    if ok is False:
        failed = True
    rows.append((name, ours, ref, target, {True: "PASS", False: "FAIL", None: "n/a", "info": ""}[ok]))

ms = lambda v: f"{v:.2f} ms"
env_only = res["env-only"]
send, curl = res["send"], res["curl"]
row("sending call (median)", ms(send), f"curl {ms(curl)}", f"ratio {send / curl:.2f} <= 0.5", send <= 0.5 * curl)
for label, suffix in [("sending call over HTTPS (nginx)", ""), ("  with SSL_CERT_DIR=/etc/ssl/certs", "-certdir")]:
    ours, theirs = "send-https" + suffix, "curl-https" + suffix
    row(label, f"{ms(res[ours])} (CPU {ms(cpu[ours])})", f"curl {ms(res[theirs])} (CPU {ms(cpu[theirs])})",
        f"ratio {res[ours] / res[theirs]:.2f} <= 0.35 (CPU {cpu[ours] / cpu[theirs]:.2f})",
        res[ours] <= 0.35 * res[theirs])
floor, floor_cpu = (res["version"] + res["floor-tls13-in-process"], cpu["version"] + cpu["floor-tls13-in-process"])
row("  physical floor: exec + TCP + TLS 1.3 + POST", f"{ms(floor)} (CPU {ms(floor_cpu)})",
    f"--version {ms(res['version'])} + handshake {ms(res['floor-tls13-in-process'])}", "", "info")
row("  the call above the floor", f"{ms(res['send-https'] - floor)} (CPU {ms(cpu['send-https'] - floor_cpu)})",
    f"{res['send-https'] / floor:.2f}x the floor", "", "info")
if "base-https" in res:
    for label, suffix in [("  BENCH_BASELINE over HTTPS", ""), ("  BENCH_BASELINE with SSL_CERT_DIR", "-certdir")]:
        base, theirs = "base-https" + suffix, "curl-https" + suffix
        row(label, f"{ms(res[base])} (CPU {ms(cpu[base])})", f"curl {ms(res[theirs])}",
            f"ratio {res[base] / res[theirs]:.2f} (CPU {cpu[base] / cpu[theirs]:.2f})", "info")
reads = int(env["https_ca_reads"])
row("  CA files read beyond SSL_CERT_FILE", str(reads), "SSL_CERT_DIR set", "0 (chain verified)", reads == 0)
if env["has_ns"] == "true":
    off = res["offline"] - res["unshare-alone"]
    row("offline (unshare -n), less unshare", ms(off), f"unshare alone {ms(res['unshare-alone'])}", "<= 100 ms",
        off <= 100)
else:
    row("offline (unshare -n)", "n/a (needs root and unshare)", "", "<= 100 ms", None)
row("ten calls, SYNs dropped, --timeout 1s", ms(res["ten-blackholed"]), "", "<= 1.5 s",
    res["ten-blackholed"] <= 1500)
row("refused port", ms(res["refused"]), "", "< 10 ms", res["refused"] < 10)
row("black-holed, --timeout 300ms", ms(res["blackhole"]), "", "< 400 ms", res["blackhole"] < 400)
row("--dry-run", ms(res["dry-run"]), f"/bin/true {ms(res['true'])}", "< 2 ms", res["dry-run"] < 2)
opt = res["opted-out"]
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
