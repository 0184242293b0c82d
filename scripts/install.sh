#!/bin/sh
# Installer for "demo", instrumented with install-beacon at every step.
#
#   sh install.sh [--prefix DIR] [--fail-at STEP]
#
# It downloads nothing: the release archive is built from files embedded below, then checked and
# unpacked like a real one. Telemetry: install-beacon reports Installation Started / Success /
# Error (with the failed step) / Support. Opt out with DO_NOT_TRACK=1.
# install-beacon is found through $INSTALL_BEACON_BIN, else on PATH; without it the steps still run.
set -eu

PREFIX=${HOME:-/tmp}/.local/demo
FAIL_AT=
VERSION=1.4.0
while [ "$#" -gt 0 ]; do
  case $1 in
    --prefix) PREFIX=$2; shift 2 ;;
    --fail-at) FAIL_AT=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (use --prefix DIR, --fail-at STEP)" >&2; exit 2 ;;
  esac
done
case $PREFIX in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac

BEACON=${INSTALL_BEACON_BIN:-install-beacon}
export BEACON
WORK=$(mktemp -d "${TMPDIR:-/tmp}/demo-install.XXXXXX")
LOG=$WORK/install.log

# Hooks: beacon_step/beacon_run/beacon_success, an EXIT trap that reports the failed step and
# offers help. All options below are exported to every later call.
if command -v "$BEACON" >/dev/null 2>&1; then
  eval "$("$BEACON" shell-init --product demo --product-version "$VERSION" \
    --id-file "$PREFIX/etc/demo/installation_id" --support-prompt)" || true
fi
command -v beacon_run >/dev/null 2>&1 || {
  beacon_started() { :; }; beacon_success() { :; }
  beacon_run() { while [ "$1" != "--" ]; do shift; done; shift; "$@"; }
}

# step NAME LABEL SCRIPT: runs SCRIPT with sh -e under install-beacon ($1 = prefix, $2 = work dir).
step() {
  script=$3
  if [ "$FAIL_AT" = "$1" ]; then
    script="echo \"demo: simulated failure in step $1\" >&2; exit 3"
  fi
  beacon_run "$1" --label "$2" --log "$LOG" -- sh -ec "$script" step "$PREFIX" "$WORK"
}

echo "Installing demo $VERSION into $PREFIX"
"$BEACON" --product demo consent --prompt 2>/dev/null || true
beacon_started

step preflight "Checking prerequisites" '
  for tool in tar sha256sum; do
    command -v "$tool" >/dev/null || { echo "demo needs $tool; install it and run again" >&2; exit 1; }
  done
  mkdir -p "$1" && [ -w "$1" ] || { echo "cannot write to $1; choose another --prefix" >&2; exit 1; }
'

step download "Fetching the demo release" '
  mkdir -p "$2/pkg/bin" "$2/pkg/share/demo"
  cat > "$2/pkg/bin/demo" <<"SCRIPT"
#!/bin/sh
# demo: prints its installation ID, read from the file install-beacon wrote.
here=$(cd "$(dirname "$0")/.." && pwd)
echo "demo 1.4.0, installation $(cat "$here/etc/demo/installation_id")"
SCRIPT
  chmod 755 "$2/pkg/bin/demo"
  echo "demo: a product that demonstrates install-beacon" > "$2/pkg/share/demo/README"
  tar -C "$2/pkg" -cf "$2/demo.tar" .
  (cd "$2" && sha256sum demo.tar > demo.tar.sha256)
'

step verify "Verifying the checksum" '(cd "$2" && sha256sum -c demo.tar.sha256)'

step unpack "Unpacking into the prefix" 'tar -C "$1" -xf "$2/demo.tar"'

step configure "Writing the configuration" '
  mkdir -p "$1/etc/demo"
  printf "listen = 127.0.0.1:8080\ndata_dir = %s/var/lib/demo\n" "$1" > "$1/etc/demo/demo.conf"
  mkdir -p "$1/var/lib/demo"
'

# The installed product reads the same installation ID the beacon sends (no-op without it).
step identity "Recording the installation ID" '
  id_file=$1/etc/demo/installation_id
  if command -v "$BEACON" >/dev/null 2>&1; then
    "$BEACON" --product demo --id-file "$id_file" id >/dev/null
  elif [ ! -s "$id_file" ]; then
    cat /proc/sys/kernel/random/uuid > "$id_file"
  fi
'

step selftest "Running a self-test" '"$1/bin/demo" >/dev/null'

beacon_success
rm -rf "$WORK"
echo "demo is installed: run $PREFIX/bin/demo"
