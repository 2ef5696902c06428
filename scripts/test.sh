#!/usr/bin/env bash
# The test suite: formatting, lints, then every test (unit, golden, and integration tests
# against a real moto server that the tests start on loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
# The programs the integration tests run, each as COMMAND:DEBIAN-PACKAGE (the same list as
# TOOLS in tests/it/support/mod.rs, which a test keeps equal to this line). A test that needs
# one fails without it, naming it and its package: no test skips. python3 with its venv module
# makes the venv of moto and botocore (scripts/moto.sh install).
tools="chromedriver:chromium-driver chromium:chromium curl:curl git:git kill:procps mkfifo:coreutils prometheus:prometheus promtool:prometheus ssh-keygen:openssh-client systemd-analyze:systemd"
missing=()
for t in $tools; do
  command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo -n); fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    echo "installing the Debian packages the tests need: ${missing[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "the tests need these Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
scripts/moto.sh install
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
