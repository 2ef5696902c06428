#!/usr/bin/env bash
# Scale figures for a large account (docs/benchmarks.md, issue 7): a fresh moto server holding
# UNMANAGED roles and UNMANAGED customer managed policies made outside mlspace-gitops (default
# 4,500 each), beside a manifest set of MANAGED roles and MANAGED policies (default 500 each)
# that mlspace-gitops creates: 5,000 roles and 5,000 policies in the account, 1,000 managed.
# Prints validate, create, no-op plans (time, requests, peak RSS).
#   UNMANAGED=4500 MANAGED=500 scripts/bench-account.sh
set -euo pipefail
cd "$(dirname "$0")/.."
unmanaged=${UNMANAGED:-4500}
managed=${MANAGED:-500}
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
log=$work/moto.log
endpoint=$(MOTO_PID_FILE="$work/moto.pid" scripts/moto.sh start "$log"); pids+=("$(cat "$work/moto.pid")")
export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
requests() { grep -c 'HTTP/1.1"' "$log" || true; }

s0=$(date +%s.%N)
"$venv/bin/python" - "$unmanaged" <<'PY'
# The rest of the account, made the way other tools and the MLSpace app make it: untagged
# by mlspace-gitops, some roles with an attached policy and an inline policy.
import json, sys, boto3
from botocore.config import Config
n = int(sys.argv[1])
# One client, one thread: moto's IAM backend answers 500 to concurrent writers.
iam = boto3.client("iam", config=Config(retries={"max_attempts": 10, "mode": "standard"}))
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
def make(i):
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::other-{i % 13}/{i}/*"}]})
    p = iam.create_policy(PolicyName=f"other-policy-{i:05d}", PolicyDocument=doc)["Policy"]["Arn"]
    iam.create_role(RoleName=f"other-role-{i:05d}", AssumeRolePolicyDocument=trust, Tags=[{"Key": "team", "Value": f"t{i % 17}"}])
    iam.attach_role_policy(RoleName=f"other-role-{i:05d}", PolicyArn=p)
    if i % 3 == 0:
        iam.put_role_policy(RoleName=f"other-role-{i:05d}", PolicyName="inline", PolicyDocument=doc)
for i in range(n):
    make(i)
PY
s1=$(date +%s.%N)
echo "seeded $unmanaged unmanaged roles and policies in $(echo "$s1 - $s0" | bc) s"

# manifests DIR N [CHANGED]: N managed policies and N roles using them; the first CHANGED/2
# policies get another document and the first CHANGED/2 roles another tag.
manifests() {
  mkdir -p "$1"
  python3 - "$1/resources.yaml" "$2" "${3:-0}" <<'PY'
import sys
path, n, changed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) // 2
docs = ['apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: scale}\nspec: {region: us-east-1, account: "123456789012", tags: {system: MLSpace}}\n']
for i in range(n):
    prefix = "v2/" if i < changed else ""
    docs.append(f'apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: mlspace-scale-policy-{i:04d}}}\nspec:\n  document: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: ["s3:GetObject"], Resource: "arn:aws:s3:::mlspace-{i % 7}/{prefix}{i:04d}/*"}}]}}\n')
for i in range(n):
    tags = f"\n  tags: {{wave: '2'}}" if i < changed else ""
    docs.append(f'apiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: mlspace-scale-role-{i:04d}}}\nspec:\n  managedPolicies: [mlspace-scale-policy-{i:04d}]\n  assumeRolePolicy: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: "sts:AssumeRole"}}]}}{tags}\n')
open(path, "w").write("---\n".join(docs))
PY
}
manifests "$work/m" "$managed"
state=$work/state
s0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/rss" "$bin" validate -m "$work/m" >/dev/null
s1=$(date +%s.%N)
echo "validate $((managed * 2)) resources: $(echo "$s1 - $s0" | bc) s, peak RSS $(tail -n1 "$work/rss") KB"
b=$(requests); s0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/rss" "$bin" apply -m "$work/m" --state-dir "$state" --auto-approve --concurrency 16 >/dev/null
s1=$(date +%s.%N)
echo "create $((managed * 2)) managed: $(echo "$s1 - $s0" | bc) s, $(( $(requests) - b )) requests, peak RSS $(tail -n1 "$work/rss") KB"
for i in 1 2 3; do
  b=$(requests); s0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$bin" plan -m "$work/m" --state-dir "$state" --detailed-exitcode --stats >/dev/null 2>"$work/stats"
  s1=$(date +%s.%N)
  echo "no-op plan: $(echo "$s1 - $s0" | bc) s, $(( $(requests) - b )) requests, peak RSS $(tail -n1 "$work/rss") KB"
done
sed 's/^/  /' "$work/stats"

# 100 changes: 50 policy documents and 50 role tags.
changes=${CHANGES:-100}
rm -rf "$work/m" && manifests "$work/m" "$managed" "$changes"
b=$(requests); s0=$(date +%s.%N)
set +e
/usr/bin/time -f "%M" -o "$work/rss" "$bin" plan -m "$work/m" --state-dir "$state" --detailed-exitcode >"$work/plan" 2>&1
code=$?
set -e
s1=$(date +%s.%N)
[ "$code" = 2 ] || { echo "plan with changes exited $code"; cat "$work/plan"; exit 1; }
echo "plan with $changes changes: $(echo "$s1 - $s0" | bc) s, $(( $(requests) - b )) requests, peak RSS $(tail -n1 "$work/rss") KB; $(grep '^Plan:' "$work/plan")"
b=$(requests); s0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/rss" "$bin" apply -m "$work/m" --state-dir "$state" --auto-approve --concurrency 16 >/dev/null
s1=$(date +%s.%N)
echo "apply of $changes changes: $(echo "$s1 - $s0" | bc) s, $(( $(requests) - b )) requests, peak RSS $(tail -n1 "$work/rss") KB"
b=$(requests); s0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/rss" "$bin" plan -m "$work/m" --state-dir "$state" --detailed-exitcode >/dev/null
s1=$(date +%s.%N)
echo "no-op plan after it: $(echo "$s1 - $s0" | bc) s, $(( $(requests) - b )) requests, peak RSS $(tail -n1 "$work/rss") KB"

# Validation alone at 5x and 10x the managed set: 5,000 and 10,000 resources by default.
for times in 5 10; do
  big=$((managed * times))
  manifests "$work/big$times" "$big"
  s0=$(date +%s.%N)
  # Above the default limits of a revision (5,000 documents, 250,000 YAML nodes, 4 MiB per
  # file): raised for this measurement (a build without the limits ignores the variables).
  MLSPACE_GITOPS_MAX_DOCUMENTS=100000 MLSPACE_GITOPS_MAX_YAML_NODES=10000000 \
    MLSPACE_GITOPS_MAX_FILE_SIZE=1GiB MLSPACE_GITOPS_MAX_REVISION_SIZE=1GiB \
    /usr/bin/time -f "%M" -o "$work/rss" "$bin" validate -m "$work/big$times" >/dev/null
  s1=$(date +%s.%N)
  echo "validate $((big * 2)) resources: $(echo "$s1 - $s0" | bc) s, peak RSS $(tail -n1 "$work/rss") KB"
done
# Where a no-op plan's time goes: the one account-wide read, and one tag read per policy.
"$venv/bin/python" - "$managed" <<'PY'
import sys, time, boto3
n = int(sys.argv[1])
iam = boto3.client("iam")
t = time.time()
out = iam.get_account_authorization_details(Filter=["Role", "LocalManagedPolicy"], MaxItems=1000)
print(f"  moto GetAccountAuthorizationDetails alone: {time.time() - t:.2f} s ({len(out['RoleDetailList'])} roles, {len(out['Policies'])} policies)")
t = time.time()
for i in range(n):
    iam.list_policy_tags(PolicyArn=f"arn:aws:iam::123456789012:policy/mlspace-scale-policy-{i:04d}")
print(f"  moto ListPolicyTags x{n}, one at a time: {time.time() - t:.2f} s")
PY
