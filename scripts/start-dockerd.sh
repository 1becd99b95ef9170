#!/usr/bin/env bash
# Start a Docker engine for nb-evidence's container checks, if none answers yet.
#
#   scripts/start-dockerd.sh [LOGFILE]     (default log: /tmp/dockerd.log)
#
# Needs root. Installs Debian's docker.io when dockerd is missing, starts dockerd in the
# background (default --data-root), writes its pid to /var/run/nb-dockerd.pid, waits up to
# 60 s for `docker info`, and prints one line. Idempotent: an engine that already answers
# is left alone. scripts/stop-dockerd.sh stops only the dockerd this script started.
set -euo pipefail

LOG="${1:-/tmp/dockerd.log}"
PIDFILE="${NB_DOCKERD_PIDFILE:-/var/run/nb-dockerd.pid}"
WAIT_S="${NB_DOCKERD_WAIT_S:-60}"

engine_answers() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
    echo "dockerd: already running ($(docker info --format '{{.ServerVersion}}' 2>/dev/null))"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "dockerd: no engine answers and starting one needs root (run: sudo $0)" >&2
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends docker.io >/dev/null
fi

# A stale pidfile from an earlier run must not fool us (or make dockerd refuse to start).
if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    rm -f "$PIDFILE"
fi

if [ ! -f "$PIDFILE" ]; then
    mkdir -p "$(dirname "$LOG")"
    # setsid: dockerd outlives this script and the shell that ran it.
    setsid dockerd --pidfile "$PIDFILE" >>"$LOG" 2>&1 < /dev/null &
fi

for _ in $(seq 1 "$WAIT_S"); do
    if engine_answers; then
        echo "dockerd: started ($(docker info --format '{{.ServerVersion}}'), pid $(cat "$PIDFILE" 2>/dev/null || echo '?'), log $LOG)"
        exit 0
    fi
    sleep 1
done

echo "dockerd: no answer from docker info after ${WAIT_S}s; last log lines from $LOG:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
