#!/usr/bin/env bash
# Daemon figures (docs/benchmarks.md): RSS idle and while reconciling the bundled manifests/,
# and the latency from a git commit to "applied" in /status, against moto on loopback.
# The git remote is a local repository (file://) polled every second.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
endpoint=$(MOTO_PID_FILE="$work/moto.pid" scripts/moto.sh start "$work/moto.log"); pids+=("$(cat "$work/moto.pid")")
export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
cargo build --release --quiet
repo=$work/repo; mkdir -p "$repo"; cp -r manifests "$repo/"
git -C "$repo" init -q -b main && git -C "$repo" -c user.name=bench -c user.email=bench@example.com add -A \
  && git -C "$repo" -c user.name=bench -c user.email=bench@example.com commit -qm initial
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${CARGO_TARGET_DIR:-$root/target}/release/mlspace-gitops" run --source "file://$repo" --state-dir "$work/state" --interval 1s --resync 10m \
  --listen "127.0.0.1:$port" >"$work/daemon.log" 2>&1 &
dpid=$!; pids+=("$dpid")
applied() { curl -fsS "http://127.0.0.1:$port/status" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("last_applied_revision") or "")' 2>/dev/null || true; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$dpid/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$dpid/status"; }
head=$(git -C "$repo" rev-parse HEAD); s0=$(date +%s.%N); peak=0
until [ "$(applied)" = "$head" ]; do r=$(rss); [ "${r:-0}" -gt "$peak" ] && peak=$r; sleep 0.05; done
s1=$(date +%s.%N)
echo "first reconcile of manifests/ (33 resources, empty account): $(echo "$s1 - $s0" | bc) s, peak RSS $(hwm) KB"
sleep 5
echo "idle RSS after it: $(rss) KB"
total=0
for i in 1 2 3 4 5; do
  cat > "$repo/manifests/bench-$i.yaml" <<YAML
apiVersion: mlspace-gitops/v1
kind: ManagedPolicy
metadata: {name: bench-latency-$i}
spec:
  document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}
YAML
  git -C "$repo" -c user.name=bench -c user.email=bench@example.com add -A
  git -C "$repo" -c user.name=bench -c user.email=bench@example.com commit -qm "bench $i"
  head=$(git -C "$repo" rev-parse HEAD); s0=$(date +%s.%N)
  until [ "$(applied)" = "$head" ]; do sleep 0.02; done
  s1=$(date +%s.%N); d=$(echo "$s1 - $s0" | bc); total=$(echo "$total + $d" | bc)
  echo "commit $i to applied: $d s"
done
echo "mean commit to applied (1 s poll interval): $(echo "scale=2; $total / 5" | bc) s"
echo "RSS after: $(rss) KB, peak $(hwm) KB"
