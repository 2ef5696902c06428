#!/usr/bin/env bash
# Speed against the Terraform peer: the same workload (21 policies, 20 roles with a boundary
# and one attached policy, 3 versioned encrypted buckets, 2 on-demand tables) created and then
# planned with no changes, by Terraform (../shared/bench/terraform-peer/run.sh) and by
# mlspace-gitops (benches/peer-workload/), each on its own fresh moto server, in one run.
# Prints seconds, requests (counted in moto's log) and peak RSS; figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
peer=${PEER_DIR:-$root/../shared/bench/terraform-peer}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

start_moto() { # $1: name; sets $endpoint
  endpoint=$(MOTO_PID_FILE="$work/$1.pid" scripts/moto.sh start "$work/$1.log")
  pids+=("$(cat "$work/$1.pid")")
}
requests() { grep -c 'HTTP/1.1"' "$1" || true; }

# MLSPACE_GITOPS_BIN times another build (e.g. an older release, for before/after figures).
if [ -n "${MLSPACE_GITOPS_BIN:-}" ]; then
  bin=$MLSPACE_GITOPS_BIN
else
  cargo build --release --quiet
  bin=${CARGO_TARGET_DIR:-$root/target}/release/mlspace-gitops
fi

echo "== terraform"
if command -v terraform >/dev/null && [ -d "$peer" ]; then
  start_moto tf
  ENDPOINT=$endpoint MOTO_LOG=$work/tf.log /usr/bin/time -f "terraform peak RSS (last command): %M KB" bash "$peer/run.sh" 2>&1 | sed 's/^/  /'
else
  echo "  terraform or the peer workload is missing; skipped"
fi

echo "== mlspace-gitops"
start_moto mg
export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
b=$(requests "$work/mg.log"); s0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/rss" "$bin" apply -m benches/peer-workload --auto-approve >/dev/null
s1=$(date +%s.%N)
echo "  mlspace-gitops create: $(echo "$s1 - $s0" | bc) s, $(( $(requests "$work/mg.log") - b )) requests, peak RSS $(cat "$work/rss") KB"
for i in 1 2 3; do
  b=$(requests "$work/mg.log"); s0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$bin" plan -m benches/peer-workload --detailed-exitcode >/dev/null
  s1=$(date +%s.%N)
  echo "  mlspace-gitops no-op plan: $(echo "$s1 - $s0" | bc) s, $(( $(requests "$work/mg.log") - b )) requests, peak RSS $(cat "$work/rss") KB"
done
