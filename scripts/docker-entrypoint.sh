#!/bin/sh
# Entrypoint for a "demo" container: reports the installation once per installation ID (it runs
# on every container start), sends a heartbeat at most every 6 hours, then becomes the command.
#
#   ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
#   CMD ["demo"]
#
# Keep the state on a volume (INSTALL_BEACON_STATE_DIR, default /var/lib/demo for root) so
# "once" survives container restarts. Opt out with DO_NOT_TRACK=1 or DEMO_DISABLE_TELEMETRY=1.
set -eu

BEACON=${INSTALL_BEACON_BIN:-install-beacon}
if command -v "$BEACON" >/dev/null 2>&1; then
  # Never delays the start by more than the timeout, never fails it.
  "$BEACON" --product demo --timeout 2s --once success || true
  "$BEACON" --product demo --timeout 2s heartbeat --every 6h || true
fi
exec "$@"
