#!/usr/bin/env bash
# The emulator part of `make test` (run under infra/local/with-emulator.sh):
# - the adapters' contract tests, on LocalStack and on moto (tests/contract.rs);
# - on LocalStack only, the end-to-end suite on the deployed template (LocalStack runs the
#   functions), then the deployment check: the template deployed with the real zips and every
#   created resource read back (tests/deploy/localstack_deploy.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
threads="${TEST_THREADS:-3}"
if [ "${EMULATOR:-localstack}" = localstack ]; then
  tests=(--test contract --test breaker --test gate --test inbox --test outbox --test faults --test bad_input --test cli --test logs)
else
  tests=(--test contract)
fi
# cargo-nextest (on the build machines) keeps $threads tests running across all the test
# files, instead of one file at a time; plain cargo test where it is missing.
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run -p steadfast-tests "${tests[@]}" -j "$threads" --no-tests=fail
else
  cargo test -p steadfast-tests "${tests[@]}" -- --test-threads="$threads"
fi
if [ "${EMULATOR:-localstack}" = localstack ]; then
  echo "==> deploying infra/template.yaml to LocalStack CloudFormation with the real zips"
  .tools/localstack-venv/bin/python tests/deploy/localstack_deploy.py
fi
