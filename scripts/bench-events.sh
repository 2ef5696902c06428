#!/usr/bin/env bash
# Events figures (docs/benchmarks.md, issue 14), against moto on loopback with the bundled
# manifests/ (35 resources):
#  1. event-to-repair latency: deploy/events deployed on moto's CloudFormation, the daemon
#     reading the stack's queue with --resync 1h; DRIFTS times (default 100) a role's tag is
#     removed behind its back and the CloudTrail record of that call is put on EventBridge,
#     whose rule routes it to the queue; the time from putting the event to AWS showing the
#     tag again is measured from outside (p50, p99), next to the daemon's own histogram.
#  2. AWS requests per hour at rest: the daemon without events at a short resync gives the
#     requests of one whole reconcile; with events, the requests of an idle window (long
#     polls). Both are scaled to an hour: a 10 min resync without events against a 1 h resync
#     with events.
#   DRIFTS=100 IDLE=120 scripts/bench-events.sh
set -euo pipefail
cd "$(dirname "$0")/.."
drifts=${DRIFTS:-100}
idle=${IDLE:-120}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
# MLSPACE_GITOPS_BIN times another build (e.g. an older release, for before/after figures).
if [ -n "${MLSPACE_GITOPS_BIN:-}" ]; then
  bin=$MLSPACE_GITOPS_BIN
else
  cargo build --release --quiet
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/mlspace-gitops
fi
venv=${MLSPACE_GITOPS_VENV:-$PWD/.venv}
endpoint=$(MOTO_PID_FILE="$work/moto.pid" scripts/moto.sh start "$work/moto.log"); pids+=("$(cat "$work/moto.pid")")
export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
metrics() { curl -fsS "http://127.0.0.1:$1/metrics"; }
# sum of the samples of metric $2 (with label filter $3, a grep -E pattern) at port $1
metric() { metrics "$1" | grep -E "^$2(\{|\s)" | grep -E "${3:-.}" | awk '{s += $NF} END {printf "%d\n", s}'; }
reconciles() { curl -fsS "http://127.0.0.1:$1/status" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("reconciles", 0))' 2>/dev/null || echo 0; }
# start DIR RESYNC: the daemon on DIR; sets port and dpid
start() {
  port=$(free_port)
  RUST_LOG=warn "$bin" run --source "$1" --state-dir "$work/state-$port" --resync "$2" --listen "127.0.0.1:$port" >"$work/daemon-$port.log" 2>&1 &
  dpid=$!; pids+=("$dpid")
}

# The stack, and the queue URL it outputs.
queue=$("$venv/bin/python" - <<'PY'
import boto3
cf = boto3.client("cloudformation")
cf.create_stack(StackName="mlspace-gitops-events", TemplateBody=open("deploy/events/mlspace-gitops-events.yaml").read())
stack = cf.describe_stacks(StackName="mlspace-gitops-events")["Stacks"][0]
assert stack["StackStatus"] == "CREATE_COMPLETE", stack
print(next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "QueueUrl"))
PY
)
echo "deploy/events stack on moto; queue $queue"

# The bundled manifests, with and without the stack's queue.
cp -r manifests "$work/plain"
cp -r manifests "$work/events"
python3 - "$work/events/environment.yaml" "$queue" <<'PY'
import sys
path, queue = sys.argv[1], sys.argv[2]
text = open(path).read()
open(path, "w").write(text.rstrip("\n") + f"\n  events:\n    queues: [\"{queue}\"]\n")
PY

# 1. Latency.
start "$work/events" 1h
until [ "$(reconciles "$port")" -ge 1 ] && metrics "$port" | grep -c '^mlspace_gitops_events_received_total{' >/dev/null; do sleep 0.2; done
echo "first reconcile done; the daemon reads the queue (resync 1h)"
cp0=$(metric "$port" mlspace_gitops_aws_requests_total 'service="(IAM|S3|DynamoDB|KMS)"')
"$venv/bin/python" - "$drifts" <<'PY'
import json, math, sys, time, boto3
n = int(sys.argv[1])
iam, events = boto3.client("iam"), boto3.client("events")
roles = ["mlspace-notebook-role", "mlspace-app-role", "mlspace-system-role", "mlspace-s3-reader-Role",
         "mlspace-apigw-cloudwatch-role", "mlspace-api-cloudwatch-role", "EMR_DefaultRole", "EMR_EC2_DefaultRole"]
def tagged(role):
    return any(t["Key"] == "system" for t in iam.list_role_tags(RoleName=role)["Tags"])
took = []
for i in range(n):
    role = roles[i % len(roles)]
    assert tagged(role), role
    iam.untag_role(RoleName=role, TagKeys=["system"])
    detail = {"eventVersion": "1.09", "eventSource": "iam.amazonaws.com", "eventName": "UntagRole",
              "awsRegion": "us-east-1", "recipientAccountId": "123456789012", "readOnly": False,
              "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/Admin/bench"},
              "requestParameters": {"roleName": role, "tagKeys": ["system"]}, "eventType": "AwsApiCall"}
    t0 = time.monotonic()
    events.put_events(Entries=[{"Source": "aws.iam", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail)}])
    while not tagged(role):
        if time.monotonic() - t0 > 30:
            sys.exit(f"drift {i} on {role} not repaired within 30 s")
        time.sleep(0.005)
    took.append(time.monotonic() - t0)
took.sort()
pct = lambda p: took[max(0, math.ceil(p / 100 * len(took)) - 1)]  # nearest rank
print(f"event to repair over {n} drifts, seen from outside (EventBridge put to the tag back in IAM): "
      f"p50 {pct(50) * 1000:.0f} ms, p99 {pct(99) * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms, mean {sum(took) / n * 1000:.0f} ms")
PY
echo "the daemon's histogram (mlspace_gitops_event_to_repair_seconds, result=repaired, from SQS's SentTimestamp):"
metrics "$port" | grep -E '^mlspace_gitops_event_to_repair_seconds_(bucket|count|sum)\{result="repaired"' | sed 's/^/  /'
targeted=$(metric "$port" mlspace_gitops_event_reconciles_total)
cp=$(( $(metric "$port" mlspace_gitops_aws_requests_total 'service="(IAM|S3|DynamoDB|KMS)"') - cp0 ))
echo "targeted reconciles: $targeted, whole reconciles: $(metric "$port" mlspace_gitops_reconcile_total), requests to IAM, S3, DynamoDB and KMS per targeted reconcile: $(echo "scale=1; $cp / $targeted" | bc)"

# 2. Requests at rest. With events: an idle window after the drifts.
b=$(metric "$port" mlspace_gitops_aws_requests_total)
bsqs=$(metric "$port" mlspace_gitops_aws_requests_total 'service="SQS"')
sleep "$idle"
with_idle=$(( $(metric "$port" mlspace_gitops_aws_requests_total) - b ))
with_sqs=$(( $(metric "$port" mlspace_gitops_aws_requests_total 'service="SQS"') - bsqs ))
kill "$dpid"
# Without events: whole no-op reconciles at a 20 s resync (the first one is left out).
start "$work/plain" 20s
until [ "$(reconciles "$port")" -ge 1 ]; do sleep 0.2; done
r0=$(reconciles "$port"); b=$(metric "$port" mlspace_gitops_aws_requests_total)
bc=$(metric "$port" mlspace_gitops_aws_requests_total 'service="(IAM|S3|DynamoDB|KMS)"')
until [ "$(reconciles "$port")" -ge $((r0 + 3)) ]; do sleep 0.5; done
whole=$(( ($(metric "$port" mlspace_gitops_aws_requests_total) - b) / 3 ))
whole_cp=$(( ($(metric "$port" mlspace_gitops_aws_requests_total 'service="(IAM|S3|DynamoDB|KMS)"') - bc) / 3 ))
per_hour_idle=$(( with_idle * 3600 / idle ))
echo "one whole no-op reconcile of manifests/: $whole requests ($whole_cp to IAM, S3, DynamoDB and KMS)"
echo "idle with events: $with_idle requests in $idle s ($with_sqs to SQS), $per_hour_idle per hour"
echo "requests per hour at rest, 10 min resync without events: $(( whole * 6 )) (IAM, S3, DynamoDB, KMS: $(( whole_cp * 6 )))"
echo "requests per hour at rest, 1 h resync with events (one queue): $(( whole + per_hour_idle )) (IAM, S3, DynamoDB, KMS: $whole_cp; SQS long polls: $per_hour_idle)"
