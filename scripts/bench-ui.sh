#!/usr/bin/env bash
# Web UI figures (docs/benchmarks.md, "Web UI"), against moto on loopback: the daemon in
# detect mode on a generated Environment of RESOURCES tables (default 1,000; none exist in
# moto, so each is drifted with a pending create and its field diffs: the heaviest page).
#  1. page weight: bytes of the Environment page's HTML, stylesheet and script, as served;
#  2. time to first render: headless chromium (Debian's, through chromedriver over plain
#     WebDriver HTTP) loads the page RUNS times (default 5) in a fresh tab; first-contentful-
#     paint and DOMContentLoaded from the browser's performance entries, median and worst;
#  3. idle cost: with the page open (refreshing itself every 5 s) and no reconcile due
#     (--resync 1h), the daemon's CPU time (utime+stime from /proc) over IDLE seconds
#     (default 180) and its RSS at the end.
#   RESOURCES=1000 RUNS=5 IDLE=180 scripts/bench-ui.sh
# MLSPACE_GITOPS_BIN measures another build (default: a release build is made and used).
set -euo pipefail
cd "$(dirname "$0")/.."
resources=${RESOURCES:-1000}
runs=${RUNS:-5}
idle=${IDLE:-180}
work=$(mktemp -d)
pids=()
session=""
driver=""
cleanup() {
  if [ -n "$session" ]; then curl -fsS -X DELETE "$driver/session/$session" >/dev/null 2>&1 || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
if [ -n "${MLSPACE_GITOPS_BIN:-}" ]; then
  bin=$MLSPACE_GITOPS_BIN
else
  cargo build --release --quiet
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/mlspace-gitops
fi
for t in chromium chromedriver curl python3; do
  command -v "$t" >/dev/null || { echo "bench-ui needs $t (scripts/test.sh installs it)" >&2; exit 1; }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# The Environment: RESOURCES tables with a sort key, a GSI and tags.
mkdir -p "$work/manifests"
cat >"$work/manifests/env.yaml" <<'YAML'
apiVersion: mlspace-gitops/v1
kind: Environment
metadata: {name: bench}
spec:
  region: us-east-1
  account: "123456789012"
  tags: {system: MLSpace, project: bench}
YAML
python3 - "$resources" "$work/manifests/tables.yaml" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
docs = []
for i in range(n):
    docs.append(f"""apiVersion: mlspace-gitops/v1
kind: Table
metadata: {{name: bench-table-{i:04d}}}
spec:
  partitionKey: {{name: pk, type: S}}
  sortKey: {{name: sk, type: S}}
  pointInTimeRecovery: false
  tags: {{team: team-{i % 17}}}
""")
open(out, "w").write("---\n".join(docs))
PY

endpoint=$(MOTO_PID_FILE="$work/moto.pid" scripts/moto.sh start "$work/moto.log"); pids+=("$(cat "$work/moto.pid")")
export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
port=$(free_port)
RUST_LOG=warn "$bin" run --source "$work/manifests" --state-dir "$work/state" --mode detect \
  --resync 1h --listen "127.0.0.1:$port" >"$work/daemon.log" 2>&1 &
dpid=$!; pids+=("$dpid")
base="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
  n=$(curl -fsS "$base/status" 2>/dev/null | json 'len(d["resources"]) if d["reconciles"] else 0' 2>/dev/null || echo 0)
  [ "$n" -ge "$resources" ] && break
  sleep 1
done
[ "$n" -ge "$resources" ] || { echo "the daemon did not report $resources resources; log:" >&2; cat "$work/daemon.log" >&2; exit 1; }
page="$base/ui/environments/bench"

# 1. Page weight as served (no compression).
html=$(curl -fsS "$page" | wc -c)
css=$(curl -fsS "$base/ui/assets/app.css" | wc -c)
js=$(curl -fsS "$base/ui/assets/app.js" | wc -c)
echo "page weight: html $html B, css $css B, js $js B, total $((html + css + js)) B ($resources resources)"
# Server time to render the page (curl, 20 requests).
render=$(for _ in $(seq 1 20); do curl -o /dev/null -fsS -w '%{time_total}\n' "$page"; done | sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms, max %.1f ms", a[int((NR+1)/2)]*1000, a[NR]*1000}')
echo "server: $render per request"

# 2. Time to first render in headless chromium.
dport=$(free_port)
chromedriver --port="$dport" >"$work/chromedriver.log" 2>&1 &
pids+=("$!")
driver="http://127.0.0.1:$dport"
for _ in $(seq 1 100); do curl -fsS "$driver/status" >/dev/null 2>&1 && break; sleep 0.1; done
caps=$(python3 -c 'import json,sys; print(json.dumps({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900", "--user-data-dir=" + sys.argv[1]]}}}}))' "$work/profile")
session=$(curl -fsS -X POST -H 'Content-Type: application/json' -d "$caps" "$driver/session" | json 'd["value"]["sessionId"]')
wd() { curl -fsS -X POST -H 'Content-Type: application/json' -d "$2" "$driver/session/$session/$1"; }
fcps=()
for i in $(seq 1 "$runs"); do
  wd url '{"url": "about:blank"}' >/dev/null
  # A new URL each time: a cold load, not a revalidation (304) of the last one.
  wd url "{\"url\": \"$page?run=$i\"}" >/dev/null
  sleep 1
  fcps+=("$(wd execute/sync '{"script": "const p = performance.getEntriesByName(\"first-contentful-paint\")[0]; const n = performance.getEntriesByType(\"navigation\")[0]; return [p ? p.startTime : -1, n.domContentLoadedEventEnd, n.transferSize];", "args": []}' | json '" ".join("%.0f" % x for x in d["value"])')")
done
printf '%s\n' "${fcps[@]}" | python3 -c '
import sys
rows = [[float(x) for x in l.split()] for l in sys.stdin if l.strip()]
fcp = sorted(r[0] for r in rows); dcl = sorted(r[1] for r in rows)
mid = lambda v: v[(len(v) - 1) // 2]
print(f"first render (first-contentful-paint): median {mid(fcp):.0f} ms, max {fcp[-1]:.0f} ms; DOMContentLoaded median {mid(dcl):.0f} ms ({len(rows)} runs, {rows[-1][2]:.0f} B transferred)")'

# 3. Idle: the page stays open and refreshes itself.
wd url "{\"url\": \"$page\"}" >/dev/null
sleep 5
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$dpid/stat"; }
c0=$(cpu); t0=$(date +%s.%N)
sleep "$idle"
c1=$(cpu); t1=$(date +%s.%N)
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$dpid/status")
python3 - "$c0" "$c1" "$t0" "$t1" "$ticks" "$rss" <<'PY'
import sys
c0, c1, t0, t1, hz, rss = (float(x) for x in sys.argv[1:])
secs = (c1 - c0) / hz
print(f"idle with the page open: CPU {secs:.2f} s over {t1 - t0:.0f} s ({100 * secs / (t1 - t0):.2f}% of a core), RSS {rss / 1024:.1f} MiB")
PY
