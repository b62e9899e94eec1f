#!/usr/bin/env bash
# The emulator part of `make test` (run under infra/local/with-emulator.sh): the end-to-end
# tests, then, against LocalStack, the deployment of infra/template.yaml through LocalStack's
# CloudFormation with the created resources read back (tests/deploy/localstack_deploy.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test --workspace --test '*' -- --test-threads="${TEST_THREADS:-3}"
if [ "${EMULATOR:-localstack}" = localstack ]; then
  echo "==> deploying infra/template.yaml to LocalStack CloudFormation"
  .tools/localstack-venv/bin/python tests/deploy/localstack_deploy.py
fi
