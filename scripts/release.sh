#!/usr/bin/env bash
# Builds install-beacon for every release target and writes dist/:
#
#   install-beacon-VERSION-TARGET.tar.gz   (Linux, macOS; holds the binary `install-beacon`)
#   install-beacon-VERSION-TARGET.zip      (Windows; holds `install-beacon.exe`)
#   SHA256SUMS, SHA256SUMS.minisig         (checksums of the archives, signed in minisign format)
#   minisign.pub                           (the public key that verifies SHA256SUMS.minisig)
#
#   scripts/release.sh VERSION            build, package, sign
#   scripts/release.sh --twice VERSION    then rebuild the binaries from scratch and check that the
#                                         archives come out byte for byte the same
#
# BEACON_SIGNING_KEY=path signs with the vendor's minisign secret key (kept outside the repository;
# minisign asks for its password). Without it, a throwaway key pair is made, so the whole flow can
# be tested; its secret key is deleted at the end.
# BEACON_RELEASE_TARGETS="t1 t2" builds a subset. BEACON_BUILD_* variables make a branded release.
#
# Needs: rustup targets, musl-tools (x86_64 Linux), cargo-zigbuild + ziglang (aarch64 Linux, macOS),
# gcc-mingw-w64-x86-64 (Windows), minisign, zip, GNU tar. Every binary must be <= 2.5 MiB.
# Builds are reproducible: SOURCE_DATE_EPOCH (default: the last commit's time) fixes every
# timestamp in the archives, entries have fixed owners and order, and the linkers write no time.
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

ALL_TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-gnu"
TARGETS=${BEACON_RELEASE_TARGETS:-$ALL_TARGETS}
MAX_BYTES=$((2560 * 1024)) # 2.5 MiB
DIST=dist
TARGET_DIR=${CARGO_TARGET_DIR:-target}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
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
    x86_64-pc-windows-gnu) need x86_64-w64-mingw32-gcc "apt-get install gcc-mingw-w64-x86-64" ;;
    *) die "unknown target $t (known: $ALL_TARGETS)" ;;
  esac
  rustup target list --installed | grep -qx "$t" || die "the Rust target $t is missing: rustup target add $t"
done

# Builds one target; prints nothing on success but the build time.
build() {
  local t=$1 start=$SECONDS
  case $t in
    x86_64-unknown-linux-musl | x86_64-pc-windows-gnu) cargo build --release --locked --target "$t" ;;
    # Zig brings the C compiler and linker (and the macOS SDK stubs) for these.
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
      touch -d "@$SOURCE_DATE_EPOCH" "$stage/install-beacon.exe"
      rm -f "$DIST/$name"
      (cd "$stage" && zip -q -X -9 "$OLDPWD/$DIST/$name" install-beacon.exe)
      ;;
    *)
      name=install-beacon-$VERSION-$t.tar.gz
      cp "$bin" "$stage/install-beacon"
      chmod 0755 "$stage/install-beacon"
      tar --sort=name --format=ustar --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
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
  done
}

package_all() {
  rm -rf "$DIST"
  mkdir -p "$DIST"
  for t in $TARGETS; do
    package "$t"
  done
  (cd "$DIST" && sha256sum -- install-beacon-* >SHA256SUMS)
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
  minisign -S -s "$key" -m "$DIST/SHA256SUMS" -x "$DIST/SHA256SUMS.minisig" \
    -t "install-beacon $VERSION SHA256SUMS" >/dev/null
  [ -z "$tmp" ] || rm -rf "$tmp"
  minisign -V -q -p "$DIST/minisign.pub" -m "$DIST/SHA256SUMS" -x "$DIST/SHA256SUMS.minisig" ||
    die "the signature just made does not verify"
}

report() {
  printf '  %-28s %12s %12s\n' target "raw bytes" "archive bytes" >&2
  for t in $TARGETS; do
    local archive
    archive=$(ls "$DIST"/install-beacon-"$VERSION"-"$t".*)
    printf '  %-28s %12s %12s\n' "$t" "$(stat -c %s "$(binary "$t")")" "$(stat -c %s "$archive")" >&2
  done
}

echo "release $VERSION (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)" >&2
build_all
package_all
sign
report

if [ "$twice" = 1 ]; then
  first=$(cat "$DIST/SHA256SUMS")
  echo "rebuilding every target from its sources to compare" >&2
  for t in $TARGETS; do
    cargo clean --release --target "$t" -p install-beacon 2>/dev/null
  done
  build_all
  saved=$(mktemp -d)
  cp "$DIST"/minisign.pub "$DIST"/SHA256SUMS.minisig "$saved"/
  package_all
  cp "$saved"/* "$DIST"/
  rm -rf "$saved"
  if [ "$(cat "$DIST/SHA256SUMS")" != "$first" ]; then
    diff <(echo "$first") "$DIST/SHA256SUMS" >&2 || true
    die "the second build differs from the first: not reproducible"
  fi
  echo "  reproducible: the second build has the same SHA256SUMS" >&2
fi
echo "release: dist/ is ready" >&2
