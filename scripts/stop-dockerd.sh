#!/usr/bin/env bash
# Stop the dockerd that scripts/start-dockerd.sh started (by the PID in its pidfile).
# An engine this script did not start is left alone.
set -euo pipefail

PIDFILE="${NB_DOCKERD_PIDFILE:-/var/run/nb-dockerd.pid}"

if [ ! -f "$PIDFILE" ]; then
    echo "dockerd: no pidfile at $PIDFILE; nothing to stop"
    exit 0
fi
PID="$(cat "$PIDFILE")"
if ! kill -0 "$PID" 2>/dev/null; then
    echo "dockerd: pid $PID is not running; removing stale $PIDFILE"
    rm -f "$PIDFILE"
    exit 0
fi
kill -TERM "$PID"
for _ in $(seq 1 30); do
    if ! kill -0 "$PID" 2>/dev/null; then
        rm -f "$PIDFILE"
        echo "dockerd: stopped (pid $PID)"
        exit 0
    fi
    sleep 1
done
echo "dockerd: pid $PID still running 30 s after SIGTERM; sending SIGKILL" >&2
kill -KILL "$PID" 2>/dev/null || true
rm -f "$PIDFILE"
