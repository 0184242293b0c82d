#!/usr/bin/env bash
# Builds install-beacon for every release target and writes dist/:
#
#   install-beacon-VERSION-TARGET.tar.gz   (Linux, macOS; holds the binary `install-beacon`)
#   install-beacon-VERSION-TARGET.zip      (Windows; holds `install-beacon.exe`)
#   SHA256SUMS, SHA256SUMS.minisig         (checksums of the archives, signed in minisign format)
#   provenance.json, provenance.json.minisig  (in-toto Statement, SLSA provenance v1: the archives
#                                          and their SHA-256, source commit, Cargo.lock, toolchain;
#                                          signed like SHA256SUMS; scripts/provenance.py)
#   minisign.pub                           (the public key that verifies SHA256SUMS.minisig)
#
#   scripts/release.sh VERSION            build, package, sign
#   scripts/release.sh --twice VERSION    then rebuild the binaries from scratch and check that the
#                                         archives come out byte for byte the same (macOS binaries:
#                                         but for their random LC_UUID)
#
# BEACON_SIGNING_KEY=path signs with the vendor's minisign secret key (kept outside the repository;
# minisign asks for its password). Without it, a throwaway key pair is made, so the whole flow can
# be tested; its secret key is deleted at the end.
# BEACON_RELEASE_TARGETS="t1 t2" builds a subset. BEACON_BUILD_* variables make a branded release.
#
# Needs: rustup targets, musl-tools (x86_64 Linux), cargo-zigbuild + ziglang (aarch64, armv7 and
# riscv64 Linux, macOS), the rust-src component (armv7, riscv64: Rust ships no prebuilt standard
# library for them, so it is built from the toolchain's own sources), gcc-mingw-w64-x86-64 (Windows),
# minisign, zip, GNU tar, python3. Every binary must be <= 2.5 MiB; scripts/check-macho.py checks
# the macOS ones (system libraries only, macOS 11.0 or older, arm64's ad-hoc signature).
# Builds are reproducible: SOURCE_DATE_EPOCH (default: the last commit's time) fixes every
# timestamp in the archives, entries have fixed owners and order, and the linkers write no time.
# Exception: Zig writes a random LC_UUID into macOS binaries; --twice compares them without it.
set -euo pipefail
cd "$(dirname "$0")/.."

twice=0
if [ "${1-}" = --twice ]; then
  twice=1
  shift
fi
VERSION=${1-}
case $VERSION in
  '' | *[!A-Za-z0-9.+-]*)
    echo "usage: scripts/release.sh [--twice] VERSION   (VERSION like 0.2.0: letters, digits, . + -)" >&2
    exit 2
    ;;
esac

ALL_TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf riscv64gc-unknown-linux-musl x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-gnu"
TARGETS=${BEACON_RELEASE_TARGETS:-$ALL_TARGETS}
MAX_BYTES=$((2560 * 1024)) # 2.5 MiB
DIST=dist
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# For the archives only: exported, it would make cc-rs rebuild C code (ring) on every commit, and
# the compilers embed no time anyway.
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export TZ=UTC

die() {
  echo "release: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null || die "$1 is missing: $2"
}
need minisign "apt-get install minisign"
need zip "apt-get install zip"
need gzip "apt-get install gzip"
for t in $TARGETS; do
  case $t in
    x86_64-unknown-linux-musl) need musl-gcc "apt-get install musl-tools" ;;
    aarch64-unknown-linux-musl | *-apple-darwin) need cargo-zigbuild "pip install ziglang cargo-zigbuild" ;;
    armv7-unknown-linux-musleabihf | riscv64gc-unknown-linux-musl)
      need cargo-zigbuild "pip install ziglang cargo-zigbuild"
      rustup component list --installed | grep -q '^rust-src' || die "$t needs the standard library's sources: rustup component add rust-src"
      continue
      ;;
    x86_64-pc-windows-gnu) need x86_64-w64-mingw32-gcc "apt-get install gcc-mingw-w64-x86-64" ;;
    *) die "unknown target $t (known: $ALL_TARGETS)" ;;
  esac
  rustup target list --installed | grep -qx "$t" || die "the Rust target $t is missing: rustup target add $t"
done

# Builds one target; prints nothing on success but the build time.
build() {
  local t=$1 start=$SECONDS
  case $t in
    x86_64-unknown-linux-musl) cargo build --release --locked --target "$t" ;;
    # ld would write the link time into the PE header (and its checksum).
    x86_64-pc-windows-gnu)
      CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS="-C link-arg=-Wl,--no-insert-timestamp" \
        cargo build --release --locked --target "$t"
      ;;
    # Zig brings the C compiler and linker (and libSystem's stubs) for these. Without a deployment
    # target Zig would link for the newest macOS only; these are Rust's own minimums. Zig has no
    # framework stubs: scripts/macos-stubs has those of the Security and CoreFoundation symbols used.
    x86_64-apple-darwin)
      MACOSX_DEPLOYMENT_TARGET=10.12 CARGO_TARGET_X86_64_APPLE_DARWIN_RUSTFLAGS="-C link-arg=-F$PWD/scripts/macos-stubs" \
        cargo zigbuild --release --locked --target "$t"
      ;;
    aarch64-apple-darwin)
      MACOSX_DEPLOYMENT_TARGET=11.0 CARGO_TARGET_AARCH64_APPLE_DARWIN_RUSTFLAGS="-C link-arg=-F$PWD/scripts/macos-stubs" \
        cargo zigbuild --release --locked --target "$t"
      ;;
    # rustup has no prebuilt standard library for these ("available = false" in the channel
    # manifest): cargo builds it from rust-src with the same compiler (RUSTC_BOOTSTRAP lets the
    # stable cargo do so), at the release profile's opt-level and LTO. Without a prebuilt one there
    # are no self-contained C runtime objects either: Zig's musl brings crt1.o and libc.
    # riscv64: std refers to libc's getrandom weakly and, after LTO, so does the getrandom crate
    # (its only backend there), so the linker would not pull getrandom from musl and the call would
    # become a jump to itself: an endless loop at the first UUID. --undefined pulls it in.
    armv7-unknown-linux-musleabihf | riscv64gc-unknown-linux-musl)
      local flags="-C link-self-contained=no"
      [ "$t" = armv7-unknown-linux-musleabihf ] || flags="$flags -C link-arg=-Wl,--undefined=getrandom"
      env "CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS=$flags" RUSTC_BOOTSTRAP=1 \
        cargo zigbuild --release --locked --target "$t" -Zbuild-std=std,panic_abort
      ;;
    *) cargo zigbuild --release --locked --target "$t" ;;
  esac
  echo "  $t: built in $((SECONDS - start)) s" >&2
}

binary() {
  case $1 in
    *windows*) echo "$TARGET_DIR/$1/release/install-beacon.exe" ;;
    *) echo "$TARGET_DIR/$1/release/install-beacon" ;;
  esac
}

# Packs one binary into its archive with fixed timestamps, owners and order.
package() {
  local t=$1 bin stage name
  bin=$(binary "$t")
  stage=$(mktemp -d)
  case $t in
    *windows*)
      name=install-beacon-$VERSION-$t.zip
      cp "$bin" "$stage/install-beacon.exe"
      touch -d "@$EPOCH" "$stage/install-beacon.exe"
      rm -f "$DIST/$name"
      (cd "$stage" && zip -q -X -9 "$OLDPWD/$DIST/$name" install-beacon.exe)
      ;;
    *)
      name=install-beacon-$VERSION-$t.tar.gz
      cp "$bin" "$stage/install-beacon"
      chmod 0755 "$stage/install-beacon"
      tar --sort=name --format=ustar --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
        -C "$stage" -cf - install-beacon | gzip -9 -n >"$DIST/$name"
      ;;
  esac
  rm -rf "$stage"
}

build_all() {
  for t in $TARGETS; do
    build "$t"
    local bin size
    bin=$(binary "$t")
    [ -f "$bin" ] || die "$t: no binary at $bin"
    size=$(stat -c %s "$bin")
    [ "$size" -le "$MAX_BYTES" ] || die "$t: $bin is $size bytes, over the limit of $MAX_BYTES (2.5 MiB)"
    case $t in *-apple-darwin) python3 scripts/check-macho.py "$bin" >&2 || die "$t: $bin fails the Mach-O checks" ;; esac
  done
}

# SHA-256 of each macOS binary with its LC_UUID and code signature zeroed.
macos_digests() {
  local t
  for t in $TARGETS; do
    case $t in *-apple-darwin) ;; *) continue ;; esac
    python3 - "$(binary "$t")" <<'PY'
import hashlib, struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
count, offset = struct.unpack_from("<I", data, 16)[0], 32
for _ in range(count):
    cmd, size = struct.unpack_from("<II", data, offset)
    if cmd == 0x1b:  # LC_UUID
        data[offset + 8:offset + 24] = bytes(16)
    elif cmd == 0x1d:  # LC_CODE_SIGNATURE: dataoff, datasize
        start, length = struct.unpack_from("<II", data, offset + 8)
        data[start:start + length] = bytes(length)
    offset += size
print(hashlib.sha256(data).hexdigest(), sys.argv[1])
PY
  done
}

package_all() {
  rm -rf "$DIST"
  mkdir -p "$DIST"
  for t in $TARGETS; do
    package "$t"
  done
  (cd "$DIST" && sha256sum -- install-beacon-* >SHA256SUMS)
  # shellcheck disable=SC2086 # one argument per target
  BEACON_EPOCH=$EPOCH python3 scripts/provenance.py "$DIST" "$VERSION" $TARGETS
}

sign() {
  local key=${BEACON_SIGNING_KEY-} tmp=""
  if [ -z "$key" ]; then
    tmp=$(mktemp -d)
    key=$tmp/minisign.key
    minisign -G -W -f -p "$DIST/minisign.pub" -s "$key" >/dev/null
    echo "  signing with a throwaway key (set BEACON_SIGNING_KEY=path for the real one)" >&2
  else
    [ -r "$key" ] || die "BEACON_SIGNING_KEY=$key is not a readable minisign secret key"
    minisign -R -s "$key" -p "$DIST/minisign.pub" >/dev/null
  fi
  # One call for both files: a vendor's key asks for its password once. Signatures: FILE.minisig.
  minisign -S -s "$key" -t "install-beacon $VERSION" -m "$DIST/SHA256SUMS" "$DIST/provenance.json" >/dev/null
  [ -z "$tmp" ] || rm -rf "$tmp"
  local file
  for file in SHA256SUMS provenance.json; do
    minisign -V -q -p "$DIST/minisign.pub" -m "$DIST/$file" -x "$DIST/$file.minisig" ||
      die "the signature of $file just made does not verify"
  done
}

report() {
  printf '  %-28s %12s %12s\n' target "raw bytes" "archive bytes" >&2
  for t in $TARGETS; do
    local archive
    archive=$(ls "$DIST"/install-beacon-"$VERSION"-"$t".*)
    printf '  %-28s %12s %12s\n' "$t" "$(stat -c %s "$(binary "$t")")" "$(stat -c %s "$archive")" >&2
  done
}

# Rebuilds each binary from its sources (the dependencies stay built).
clean_binaries() {
  for t in $TARGETS; do
    cargo clean --release --target "$t" -p install-beacon 2>/dev/null
  done
}

echo "release $VERSION (timestamps in the archives: $EPOCH)" >&2
# With --twice both builds start from the sources, so that they compare alike: a binary left by
# an earlier build (scripts/build-static.sh, on a machine whose tools were still being installed)
# once differed from its rebuild.
[ "$twice" = 1 ] && clean_binaries
build_all
package_all
sign
report

if [ "$twice" = 1 ]; then
  # Zig gives each macOS binary a random LC_UUID, and the arm64 ad-hoc signature hashes it: those
  # bytes are masked when comparing them; everything else must be identical.
  first=$(grep -v apple-darwin "$DIST/SHA256SUMS")
  first_macos=$(macos_digests)
  echo "rebuilding every target from its sources to compare" >&2
  clean_binaries
  build_all
  package_all
  sign
  if [ "$(grep -v apple-darwin "$DIST/SHA256SUMS")" != "$first" ] || [ "$(macos_digests)" != "$first_macos" ]; then
    diff <(echo "$first"; echo "$first_macos") <(grep -v apple-darwin "$DIST/SHA256SUMS"; macos_digests) >&2 || true
    die "the second build differs from the first: not reproducible"
  fi
  echo "  reproducible: the second build has the same archives (macOS: the same binaries but for LC_UUID)" >&2
fi
echo "release: dist/ is ready" >&2
# The lines an installer pastes before fetch-beacon.sh, checksums filled in: on stdout, so
# `scripts/release.sh 0.2.0 >snippet.sh` keeps them apart from the log.
scripts/release-snippet.sh "$DIST" "$VERSION"
