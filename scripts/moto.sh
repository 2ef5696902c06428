#!/usr/bin/env bash
# Install moto (the AWS emulator) into a project-local venv and, with `start`, run it on
# 127.0.0.1 on a free port. Prints the endpoint URL on stdout.
#   scripts/moto.sh install            # idempotent
#   scripts/moto.sh start [LOGFILE]    # installs if needed, starts, waits until it answers
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${MLSPACE_GITOPS_VENV:-$root/.venv}
MOTO_VERSION=5.2.5

installed() {
  [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null
}

# Tests start moto in parallel; on a fresh clone only the first may build the venv, the
# others wait for it (a half-made venv would fail them).
install() {
  installed && return 0
  (
    flock 9
    if installed; then
      exit 0
    fi
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
  ) 9>"$venv.lock"
}

free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

case "${1:-start}" in
  install) install ;;
  start)
    install
    log=${2:-/dev/null}
    port=$(free_port)
    MOTO_IAM_LOAD_MANAGED_POLICIES=true nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
        echo "http://127.0.0.1:$port"
        echo "$pid" > "${MOTO_PID_FILE:-/dev/null}"
        exit 0
      fi
      kill -0 "$pid" 2>/dev/null || { echo "moto_server exited; see $log" >&2; exit 1; }
      sleep 0.2
    done
    echo "moto_server did not answer on port $port" >&2; kill "$pid"; exit 1 ;;
  *) echo "usage: $0 install|start [LOGFILE]" >&2; exit 2 ;;
esac
