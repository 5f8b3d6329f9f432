#!/usr/bin/env bash
# PostgreSQL for the team-registry tests.
#
#   bash .ci/postgres.sh install          install the Debian server package if initdb/pg_ctl are missing
#   bash .ci/postgres.sh test [ARGS...]   start a throwaway server on 127.0.0.1, run every registry/CLI
#                                         test file against it (a fresh database per test), stop it
#   bash .ci/postgres.sh start DIR        start a server with its data in DIR; prints the admin URL
#   bash .ci/postgres.sh stop DIR         stop it and delete DIR
#
# `test` prints a clear SKIPPED line and exits 0 only when no server binaries can be found;
# any failure of a server that is installed is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

have_server() {
    "$PY" -c "import sys; sys.path.insert(0, '.'); from tests.pg_server import bin_dir; bin_dir()" 2>/dev/null
}

case "${1:-}" in
install)
    if have_server; then
        echo "postgres: server binaries found"
        exit 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
        # the package may start its own cluster on 5432; the tests run their own, so stop it
        service postgresql stop >/dev/null 2>&1 || true
    fi
    have_server || { echo "postgres: could not install the PostgreSQL server (need root and apt-get)"; exit 1; }
    echo "postgres: installed"
    ;;
start)
    exec "$PY" tests/pg_server.py start "${2:?usage: postgres.sh start DIR}"
    ;;
stop)
    exec "$PY" tests/pg_server.py stop "${2:?usage: postgres.sh stop DIR}"
    ;;
test)
    shift
    if ! have_server; then
        echo "postgres: SKIPPED the PostgreSQL suite: no server binaries (run: bash .ci/postgres.sh install)"
        exit 0
    fi
    dir=$(mktemp -d /tmp/hub-pg-XXXXXX)
    url=$("$PY" tests/pg_server.py start "$dir")
    trap '"$PY" tests/pg_server.py stop "$dir" >/dev/null 2>&1 || true' EXIT
    # every test file that touches a registry (CLI, service, subprocesses), except the
    # PostgreSQL file itself, which starts its own server
    mapfile -t files < <(grep -l -E 'run_cli|hub_home|Hub\(|Database\(|"-m", "hub"' tests/test_*.py | grep -v 'tests/test_postgres')
    echo "postgres: running ${#files[@]} test files against $url (a fresh database per test)"
    HUB_TEST_DATABASE_URL="$url" HUB_CRASH_TRIALS="${HUB_CRASH_TRIALS:-12}" \
        "$PY" -m pytest -p tests.pg_plugin "${files[@]}" "$@"
    ;;
*)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
