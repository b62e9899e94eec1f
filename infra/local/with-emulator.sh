#!/usr/bin/env bash
# Runs a command with the emulator up: starts it (or uses one already running), exports
# AWS_ENDPOINT_URL and local credentials, runs the command, and stops what it started, also
# when the command fails.
# Usage: EMULATOR=localstack|moto infra/local/with-emulator.sh CMD [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
EMULATOR="${EMULATOR:-localstack}"
endpoint=$(infra/local/emulator.sh endpoint)
started=0
if ! curl -fsS -m 2 "$endpoint/_localstack/health" >/dev/null 2>&1 && ! curl -fsS -m 2 "$endpoint/moto-api/" >/dev/null 2>&1; then
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then infra/local/emulator.sh stop; fi; }
trap cleanup EXIT
infra/local/emulator.sh start >/dev/null
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true EMULATOR
"$@"
