#!/usr/bin/env bash
# Two builds' no-op plans of the peer workload (benches/peer-workload/), side by side: one moto
# server seeded by one apply of build A, then plans by A and B in turn, RUNS pairs (default 15).
# Prints each build's median wall time and peak RSS, and the median of the per-pair ratios A/B.
#   scripts/bench-plan-pair.sh BUILD_A BUILD_B [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 runs=${3:-15}
work=$(mktemp -d)
trap 'kill "$(cat "$work/moto.pid")" 2>/dev/null || true; rm -rf "$work"' EXIT
endpoint=$(MOTO_PID_FILE="$work/moto.pid" scripts/moto.sh start "$work/moto.log")
export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true MLSPACE_GITOPS_STATE_DIR=$work/state
"$a" apply -m benches/peer-workload --auto-approve >/dev/null 2>&1
plan() { # $1: binary; prints "wall_seconds peak_kb"
  /usr/bin/time -f "%e %M" -o "$work/t" "$1" plan -m benches/peer-workload --detailed-exitcode >/dev/null 2>&1 \
    || { echo "plan by $1 was not a no-op" >&2; exit 1; }
  cat "$work/t"
}
for _ in $(seq "$runs"); do
  echo "$(plan "$a") $(plan "$b")"
done > "$work/pairs"
python3 - "$work/pairs" "$a" "$b" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
med = statistics.median
print(f"A {sys.argv[2]}: plan {med(r[0] for r in rows):.3f} s, peak RSS {med(r[1] for r in rows) / 1024:.1f} MiB")
print(f"B {sys.argv[3]}: plan {med(r[2] for r in rows):.3f} s, peak RSS {med(r[3] for r in rows) / 1024:.1f} MiB")
print(f"A/B wall, median of {len(rows)} pairs: {med(r[0] / r[2] for r in rows):.2f}")
PY
