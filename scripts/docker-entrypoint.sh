#!/bin/sh
# Entrypoint for a "demo" container: reports the installation once per installation ID (it runs
# on every container start), sends a heartbeat at most every 6 hours, then becomes the command.
#
#   ENV INSTALL_BEACON_PRODUCT=demo INSTALL_BEACON_STATE_DIR=/var/lib/demo
#   VOLUME /var/lib/demo
#   ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
#   CMD ["demo"]
#
# The product, endpoint and key come from the image's INSTALL_BEACON_* variables (the product
# defaults to demo). Keep the state dir on a volume so "once" survives new containers; it defaults
# to /var/lib/<product> because Docker's HOME=/root is not on the volume.
# Opt out with DO_NOT_TRACK=1 or <PRODUCT>_DISABLE_TELEMETRY=1.
set -eu

export INSTALL_BEACON_PRODUCT="${INSTALL_BEACON_PRODUCT:-demo}"
export INSTALL_BEACON_STATE_DIR="${INSTALL_BEACON_STATE_DIR:-/var/lib/$INSTALL_BEACON_PRODUCT}"
# Sent as install_method, so the collector can tell image installs from scripted ones.
export INSTALL_BEACON_INSTALL_METHOD="${INSTALL_BEACON_INSTALL_METHOD:-docker}"
BEACON=${INSTALL_BEACON_BIN:-install-beacon}
if command -v "$BEACON" >/dev/null 2>&1; then
  # Never delays the start by more than the timeout, never fails it.
  "$BEACON" --timeout 2s --once success || true
  "$BEACON" --timeout 2s heartbeat --every 6h || true
fi
exec "$@"
