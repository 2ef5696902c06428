#!/usr/bin/env bash
# The main job on a laptop: start moto on loopback, apply the bundled manifests to it,
# then show that a second plan has nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${MLSPACE_GITOPS_DEMO_DIR:-$(mktemp -d)}
endpoint=$(MOTO_PID_FILE="$state/moto.pid" scripts/moto.sh start "$state/moto.log")
trap 'kill "$(cat "$state/moto.pid")" 2>/dev/null || true' EXIT
echo "moto: $endpoint (log: $state/moto.log)"
export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
cargo build --release --quiet
bin=target/release/mlspace-gitops
$bin validate --manifests manifests
$bin apply --manifests manifests --auto-approve
echo; echo "Second plan (expect no changes):"
$bin plan --manifests manifests --detailed-exitcode --stats
