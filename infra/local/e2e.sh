#!/usr/bin/env bash
# The emulator part of `make test` (run under infra/local/with-emulator.sh): the end-to-end
# tests, then, against LocalStack, the deployment of infra/template.yaml through LocalStack's
# CloudFormation with the created resources read back (tests/deploy/localstack_deploy.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
# cargo-nextest (on the build machines) keeps TEST_THREADS tests running across all the test
# files, instead of one file at a time; plain cargo test where it is missing.
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --test '*' -j "${TEST_THREADS:-3}" --no-tests=fail
else
  cargo test --workspace --test '*' -- --test-threads="${TEST_THREADS:-3}"
fi
if [ "${EMULATOR:-localstack}" = localstack ]; then
  echo "==> deploying infra/template.yaml to LocalStack CloudFormation"
  .tools/localstack-venv/bin/python tests/deploy/localstack_deploy.py
fi
