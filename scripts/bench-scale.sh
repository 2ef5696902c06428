#!/usr/bin/env bash
# Engine figures beyond the peer workload (docs/benchmarks.md): the bundled manifests/, and a
# synthetic account of N roles and N policies (default 1,000 each, every role with a boundary
# and one attached policy), each on a fresh moto server: create, then no-op plans.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-1000}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/mlspace-gitops
requests() { grep -c 'HTTP/1.1"' "$1" || true; }

measure() { # $1 label, $2 manifests dir
  local log=$work/$1.log endpoint
  endpoint=$(MOTO_PID_FILE="$work/$1.pid" scripts/moto.sh start "$log"); pids+=("$(cat "$work/$1.pid")")
  export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  local b s0 s1
  b=$(requests "$log"); s0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$bin" apply -m "$2" --auto-approve --concurrency 16 >/dev/null
  s1=$(date +%s.%N)
  echo "$1 create: $(echo "$s1 - $s0" | bc) s, $(( $(requests "$log") - b )) requests, peak RSS $(cat "$work/rss") KB"
  for i in 1 2; do
    b=$(requests "$log"); s0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/rss" "$bin" plan -m "$2" --detailed-exitcode >/dev/null
    s1=$(date +%s.%N)
    echo "$1 no-op plan: $(echo "$s1 - $s0" | bc) s, $(( $(requests "$log") - b )) requests, peak RSS $(cat "$work/rss") KB"
  done
}

measure manifests manifests
mkdir -p "$work/synthetic"
python3 - "$work/synthetic/resources.yaml" "$n" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
docs = ['apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: synthetic}\nspec: {region: us-east-1, account: "123456789012"}\n',
        'apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: synth-boundary}\nspec:\n  path: /synthetic/\n  document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: ["s3:*", "logs:*"], Resource: "*"}]}\n']
for i in range(n - 1):
    docs.append(f'apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: synth-policy-{i:04d}}}\nspec:\n  path: /synthetic/\n  document: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: ["s3:GetObject"], Resource: "arn:aws:s3:::synth-{i % 7}/{i:04d}/*"}}]}}\n')
for i in range(n):
    docs.append(f'apiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: synth-role-{i:04d}}}\nspec:\n  path: /synthetic/\n  permissionsBoundary: synth-boundary\n  managedPolicies: [synth-policy-{i % (n - 1):04d}]\n  assumeRolePolicy: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: "sts:AssumeRole"}}]}}\n')
open(path, "w").write("---\n".join(docs))
PY
measure "synthetic-${n}x${n}" "$work/synthetic"
