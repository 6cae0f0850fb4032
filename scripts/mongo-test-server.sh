#!/usr/bin/env bash
# A MongoDB-wire test server (SecantusDB, from PyPI) for the storage-mongo tests.
#
#   scripts/mongo-test-server.sh start    # install if needed, start if not answering, print the URI
#   scripts/mongo-test-server.sh stop     # stop the server this script started
#   scripts/mongo-test-server.sh status   # exit 0 and print the URI when it answers
#
# Environment:
#   CLIANTA_TEST_MONGO_PORT     port on 127.0.0.1 (default 27017)
#   CLIANTA_TEST_MONGO_STORAGE  ':memory:' (default, gone at stop) or a directory to keep data in
#   CLIANTA_TEST_MONGO_WAIT     seconds to wait for the server to answer (default 60)
#   PYTHON                      interpreter for the virtualenv (default python3; the wheel needs 3.11)
#
# Real MongoDB instead: leave this script out and set CLIANTA_TEST_MONGODB_URI.
set -euo pipefail

SECANTUS_VERSION="0.7.0b3"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.mongo-venv"
STATE="$ROOT/.mongo-data"
PORT="${CLIANTA_TEST_MONGO_PORT:-27017}"
STORAGE="${CLIANTA_TEST_MONGO_STORAGE:-:memory:}"
WAIT="${CLIANTA_TEST_MONGO_WAIT:-60}"
PYTHON="${PYTHON:-python3}"
PIDFILE="$STATE/secantus-$PORT.pid"
LOGFILE="$STATE/secantus-$PORT.log"
URI="mongodb://127.0.0.1:$PORT/?directConnection=true"

die() {
    echo "mongo-test-server: $*" >&2
    exit 1
}

# A real hello + ping through pymongo (a SecantusDB dependency), not just an open port.
answers() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - "$PORT" >/dev/null 2>&1 <<'EOF'
import sys
from pymongo import MongoClient
c = MongoClient("127.0.0.1", int(sys.argv[1]), directConnection=True,
                serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)
c.admin.command("hello")
c.admin.command("ping")
EOF
}

installed() {
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" -c "import importlib.metadata as m, sys, pymongo, secantus
sys.exit(m.version('secantusdb') != '$SECANTUS_VERSION')" >/dev/null 2>&1
}

install() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (need Python 3.11 with venv and pip)"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "mongo-test-server: creating $VENV" >&2
        "$PYTHON" -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi
    echo "mongo-test-server: installing secantusdb==$SECANTUS_VERSION" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "secantusdb==$SECANTUS_VERSION" >&2 ||
        die "pip install secantusdb==$SECANTUS_VERSION failed (its wheel is cp311: use Python 3.11)"
    installed || die "secantusdb installed but does not import"
}

running_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
    if answers; then
        echo "$URI"
        return 0
    fi
    installed || install
    mkdir -p "$STATE"
    if ! running_pid >/dev/null; then
        local storage="$STORAGE"
        if [ "$storage" != ":memory:" ]; then
            mkdir -p "$storage"
        fi
        echo "mongo-test-server: starting SecantusDB $SECANTUS_VERSION on 127.0.0.1:$PORT (storage $storage, log $LOGFILE)" >&2
        # setsid: the server must outlive this shell and the job that ran it.
        # The inner shell records its own pid and then becomes the server, so the pid file names
        # the server whether or not setsid had to fork.
        (cd "$STATE" && setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
            "$VENV/bin/python" -m secantus --host 127.0.0.1 --port "$PORT" \
            --storage-path "$storage" --log-level WARNING >"$LOGFILE" 2>&1 </dev/null &)
    fi
    local deadline=$((SECONDS + WAIT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if answers; then
            echo "$URI"
            return 0
        fi
        if ! running_pid >/dev/null; then
            tail -n 30 "$LOGFILE" >&2 || true
            rm -f "$PIDFILE"
            die "SecantusDB exited before answering on port $PORT (log above)"
        fi
        sleep 0.5
    done
    tail -n 30 "$LOGFILE" >&2 || true
    die "SecantusDB did not answer on port $PORT within ${WAIT}s (log above; pid file $PIDFILE)"
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PIDFILE"
        if answers; then
            die "something answers on port $PORT but was not started by this script; not stopping it"
        fi
        echo "mongo-test-server: not running" >&2
        return 0
    fi
    kill "$pid"
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    echo "mongo-test-server: stopped (pid $pid)" >&2
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
status)
    if answers; then echo "$URI"; else die "nothing answers on port $PORT"; fi
    ;;
*) die "usage: $0 start|stop|status" ;;
esac
