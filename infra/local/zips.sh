#!/usr/bin/env bash
# The functions built with cargo-lambda for this host, as the local stack deploys them:
# target/lambda-local/<binary>/bootstrap (LocalStack's hot-reload code location, one copy for
# every test stack) and bootstrap.zip (what `sam deploy` uploads). A debug build by default,
# sharing its artifacts with `cargo test`; PROFILE=release for release binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
functions=$(cd functions && ls -d */ | tr -d / | sort)
bins=$(for f in $functions; do printf -- '--bin %s ' "$f"; done)
release=$([ "${PROFILE:-debug}" = release ] && echo --release || true)
# shellcheck disable=SC2086
cargo lambda build --compiler cargo $release --lambda-dir target/lambda-local $bins
# shellcheck disable=SC2086
cargo lambda build --compiler cargo $release --output-format zip --lambda-dir target/lambda-local $bins >/dev/null
echo "==> functions built for $(uname -m) into target/lambda-local/ ($functions)" | tr '\n' ' '; echo
