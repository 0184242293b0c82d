#!/bin/sh
# Prints the lines an installer pastes before scripts/fetch-beacon.sh: where the release lives, its
# version and its SHA256SUMS, pinned. scripts/release.sh ends with it; on its own:
#
#   BEACON_BASE_URL=https://downloads.acme.example/beacon/0.2.0 scripts/release-snippet.sh dist 0.2.0
#
# BEACON_BASE_URL is the URL of the directory the files of dist/ are uploaded to.
set -eu
[ $# = 2 ] || { echo "usage: scripts/release-snippet.sh DIST VERSION" >&2; exit 2; }
dist=$1 version=$2
[ -r "$dist/SHA256SUMS" ] || { echo "release-snippet: $dist/SHA256SUMS is missing: run scripts/release.sh first" >&2; exit 1; }
if [ -z "${BEACON_BASE_URL-}" ]; then
  echo "# set BEACON_BASE_URL to the URL of the directory you upload these files to"
  base=https://downloads.example.com/install-beacon/$version
else
  base=$BEACON_BASE_URL
fi
case $base in
  http://* | https://*) ;;
  *) echo "release-snippet: BEACON_BASE_URL=$base does not start with http:// or https://" >&2; exit 2 ;;
esac
case $base$version in
  *[!A-Za-z0-9:/._~%+@=-]*) echo "release-snippet: $base or $version holds characters a shell would read" >&2; exit 2 ;;
esac
echo "BEACON_BASE_URL=$base"
echo "BEACON_VERSION=$version"
echo "BEACON_SHA256SUMS='"
cat "$dist/SHA256SUMS"
echo "'"
