#!/usr/bin/env bash
# The main job on one machine: start moto (the AWS emulator) on loopback, then run the
# mlspace-gitops daemon on the bundled manifests/ against it. The daemon applies them,
# watches the directory (edit a file and watch it reconcile), repairs drift every resync,
# and serves its web UI at /, /metrics, /status, /healthz and /readyz. Ctrl-C stops both.
#   LISTEN=127.0.0.1:9464 RESYNC=1m scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
listen=${LISTEN:-127.0.0.1:9464}
state=${MLSPACE_GITOPS_DEMO_DIR:-$(mktemp -d)}
# A directory named by MLSPACE_GITOPS_DEMO_DIR may not exist yet.
mkdir -p "$state"
endpoint=$(MOTO_PID_FILE="$state/moto.pid" scripts/moto.sh start "$state/moto.log")
trap 'kill "$(cat "$state/moto.pid")" 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
cargo build --release --quiet
cat <<MSG
moto (AWS emulator):  $endpoint   (log: $state/moto.log)
web UI:               http://$listen/
metrics:              http://$listen/metrics
status:               http://$listen/status
readiness:            http://$listen/readyz
Reconciling manifests/ continuously; Ctrl-C to stop.
MSG
"${CARGO_TARGET_DIR:-target}"/release/mlspace-gitops run --source manifests --state-dir "$state/daemon" \
  --listen "$listen" --resync "${RESYNC:-1m}" --log-format "${LOG_FORMAT:-text}"
