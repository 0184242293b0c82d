#!/usr/bin/env bash
# Builds fully static musl release binaries and checks each one: statically linked, at most 2.5 MiB,
# and (where this machine can run it) working with an empty environment and inside an empty chroot,
# which proves it needs no libc, loader or file from the host. Then writes the man pages to target/man.
#
#   scripts/build-static.sh             x86_64, then aarch64 when its toolchain can be had
#   scripts/build-static.sh x86_64      only x86_64 (what CI runs)
#   scripts/build-static.sh aarch64     only aarch64
#
# BEACON_BUILD_* variables are passed through, so this also makes branded builds (docs/shipping.md, "Branded builds").
# Exits non-zero when a build or a check fails; a missing aarch64 toolchain is reported, not fatal.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_BYTES=$((2560 * 1024)) # 2.5 MiB
[ $# -gt 0 ] || set -- x86_64 aarch64

failed=0
fail() {
  echo "FAIL: $*" >&2
  failed=1
}

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq "$@" >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
    fi
  else
    return 1
  fi
}

add_target() {
  local triple=$1
  if rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
    return 0
  fi
  command -v rustup >/dev/null && rustup target add "$triple" >/dev/null 2>&1
}

# Checks one built binary; runs it only when `runner` is non-empty ("native" or an emulator).
check() {
  local bin=$1 arch_pattern=$2 runner=$3
  local size desc
  size=$(stat -c %s "$bin")
  desc=$(file -b "$bin")
  echo "  file: $desc"
  case "$desc" in
    *"$arch_pattern"*) ;;
    *) fail "$bin is not an $arch_pattern binary" ;;
  esac
  case "$desc" in
    *"statically linked"* | *"static-pie linked"*) echo "  static: yes (file)" ;;
    *) fail "$bin is not statically linked: $desc" ;;
  esac
  if [ "$runner" = native ]; then
    local ldd_out
    ldd_out=$(ldd "$bin" 2>&1 || true)
    case "$ldd_out" in
      *"not a dynamic executable"* | *"statically linked"*) echo "  static: yes (ldd: ${ldd_out//$'\n'/ })" ;;
      *) fail "ldd lists dynamic dependencies: $ldd_out" ;;
    esac
  fi
  if [ "$size" -le "$MAX_BYTES" ]; then
    echo "  size: $size bytes ($(awk "BEGIN{printf \"%.2f\", $size/1048576}") MiB) <= $MAX_BYTES"
  else
    fail "$bin is $size bytes, over the limit of $MAX_BYTES (2.5 MiB)"
  fi

  local run=()
  case "$runner" in
    "") echo "  run: skipped (this machine cannot run it)"; return ;;
    native) ;;
    *) run=("$(command -v "$runner")") ;;
  esac
  if env -i "${run[@]}" "$bin" --product demo started --dry-run >/dev/null; then
    echo "  env -i run: ok"
  else
    fail "$bin fails with an empty environment"
  fi
  if [ "$runner" = native ] && [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
    local root
    root=$(mktemp -d)
    cp "$bin" "$root/install-beacon"
    if env -i "$(command -v chroot)" "$root" /install-beacon --product demo started --dry-run >/dev/null; then
      echo "  empty chroot run: ok (nothing in it but the binary)"
    else
      fail "$bin does not run in an empty chroot: it needs something from the host"
    fi
    rm -rf "$root"
  else
    echo "  empty chroot run: skipped (needs a native binary, root and chroot)"
  fi
}

build_x86_64() {
  local triple=x86_64-unknown-linux-musl
  echo "== $triple"
  add_target "$triple" || { fail "cannot add the Rust target $triple (rustup target add $triple)"; return; }
  # ring compiles C and assembly, which needs a C compiler for musl.
  if ! command -v musl-gcc >/dev/null && ! command -v x86_64-linux-musl-gcc >/dev/null; then
    apt_install musl-tools || { fail "no musl C compiler; install musl-tools (apt-get install musl-tools)"; return; }
  fi
  local start=$SECONDS
  cargo build --release --locked --target "$triple" || { fail "cargo build --target $triple failed"; return; }
  echo "  build: $((SECONDS - start)) s"
  local runner=""
  [ "$(uname -m)" = x86_64 ] && runner=native
  check "target/$triple/release/install-beacon" "x86-64" "$runner"
}

build_aarch64() {
  local triple=aarch64-unknown-linux-musl
  echo "== $triple"
  if ! add_target "$triple"; then
    echo "  skipped: the Rust target $triple cannot be installed here (rustup target add $triple)"
    return
  fi
  local cc=""
  for candidate in aarch64-linux-musl-gcc aarch64-linux-gnu-gcc; do
    command -v "$candidate" >/dev/null && { cc=$candidate; break; }
  done
  if [ -z "$cc" ] && apt_install gcc-aarch64-linux-gnu; then
    cc=aarch64-linux-gnu-gcc
  fi
  if [ -z "$cc" ]; then
    echo "  skipped: no aarch64 C compiler/linker (apt-get install gcc-aarch64-linux-gnu)"
    return
  fi
  # Rust links its own musl and C runtime objects (self-contained), so a glibc cross gcc serves as
  # the linker and as ring's C compiler.
  local start=$SECONDS
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=$cc CC_aarch64_unknown_linux_musl=$cc \
    cargo build --release --locked --target "$triple" || { fail "cargo build --target $triple failed"; return; }
  echo "  build: $((SECONDS - start)) s"
  local runner=""
  if [ "$(uname -m)" = aarch64 ]; then
    runner=native
  elif command -v qemu-aarch64-static >/dev/null; then
    runner=qemu-aarch64-static
  elif command -v qemu-aarch64 >/dev/null; then
    runner=qemu-aarch64
  fi
  check "target/$triple/release/install-beacon" "ARM aarch64" "$runner"
}

for t in "$@"; do
  case "$t" in
    x86_64) build_x86_64 ;;
    aarch64) build_aarch64 ;;
    *) echo "unknown target '$t'; use x86_64 and/or aarch64" >&2; exit 2 ;;
  esac
done

# The man pages ship beside the binaries; generated from the command-line definition by an example
# (clap_mangen), so the generator stays out of the binary.
echo "== man pages"
if cargo run --quiet --locked --example manpage -- target/man >/dev/null; then
  echo "  target/man/install-beacon.1 and install-beacon-<command>.1"
else
  fail "cannot generate the man pages (cargo run --example manpage -- target/man)"
fi

if [ "$failed" != 0 ]; then
  echo "build-static: FAILED" >&2
  exit 1
fi
echo "build-static: ok"
