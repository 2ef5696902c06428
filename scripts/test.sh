#!/usr/bin/env bash
# The test suite: formatting, lints, then every test (unit, golden, and integration tests
# against a real moto server that the tests start on loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/moto.sh install
# promtool checks deploy/prometheus/alerts.yaml (tests/it/deploy_prometheus.rs, which fails
# without it under CI); Debian ships it in the prometheus package.
if ! command -v promtool >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing promtool (Debian package prometheus)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "promtool not found (apt-get install prometheus); its test is skipped outside CI" >&2
  fi
fi
# git and ssh-keygen sign commits for tests/it/verify_commits.rs (which fails without them under
# CI); Debian ships them in git and openssh-client.
if ! { command -v git && command -v ssh-keygen; } >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing git and ssh-keygen (Debian packages git, openssh-client)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git openssh-client >/dev/null
  else
    echo "git or ssh-keygen not found; tests/it/verify_commits.rs is skipped outside CI" >&2
  fi
fi
cargo fmt --all -- --check
# The kinds' folders are declared by the registry macro, which cargo fmt does not follow.
rustfmt --edition 2021 --check src/kinds/*/*.rs
# The pure stages (manifest, the kinds' pure halves, plan, inventory) build without the
# runtime feature, that is without the AWS SDK, tokio, axum and git2: prove both.
if cargo tree -p mlspace-gitops --no-default-features --edges normal --prefix none \
  | grep -E '^(tokio|aws-[a-z-]+|axum|git2|hyper) ' ; then
  echo "the pure stages depend on a runtime crate (above)" >&2
  exit 1
fi
cargo clippy -p mlspace-gitops --lib --no-default-features -- -D warnings
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
