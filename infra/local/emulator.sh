#!/usr/bin/env bash
# Starts or stops the local AWS emulator on loopback.
#   EMULATOR=localstack (default): LocalStack without Docker on 127.0.0.1:4566, its functions run
#     as local processes (localstack_launcher.py). Its mapping pollers are tuned closer to AWS's
#     continuous polling: by default they wait 1 s after every batch and up to 10 s when idle.
#     One that is already running there is used as it is, and left running on stop.
#   EMULATOR=moto: moto server on 127.0.0.1:${MOTO_PORT:-4599}.
# Usage: infra/local/emulator.sh start|stop|endpoint
# `start` prints the endpoint URL on its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROJ="$PWD"
T="$PROJ/.tools"
RUN="$T/run"
mkdir -p "$RUN"
EMULATOR="${EMULATOR:-localstack}"

healthy() { curl -fsS -m 2 "$1" >/dev/null 2>&1; }

case "$EMULATOR" in
  localstack) ENDPOINT="http://127.0.0.1:4566"; HEALTH="$ENDPOINT/_localstack/health" ;;
  moto) ENDPOINT="http://127.0.0.1:${MOTO_PORT:-4599}"; HEALTH="$ENDPOINT/moto-api/" ;;
  *) echo "EMULATOR must be localstack or moto, not '$EMULATOR'" >&2; exit 2 ;;
esac
PIDFILE="$RUN/$EMULATOR.pid"

stop_pid_tree() {
  local pid=$1
  # LocalStack's DynamoDB Local (java) and kinesis-local (node) outlive their parent: end the
  # children first, by pid.
  for child in $(pgrep -P "$pid" 2>/dev/null || true); do stop_pid_tree "$child"; done
  kill "$pid" 2>/dev/null || true
}

# Ends a process tree and waits for it; one that ignores TERM for 15 s gets KILL.
stop_and_wait() {
  local pid=$1
  stop_pid_tree "$pid"
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  echo "==> $EMULATOR (pid $pid) did not stop on TERM; sending KILL" >&2
  for child in $(pgrep -P "$pid" 2>/dev/null || true); do kill -KILL "$child" 2>/dev/null || true; done
  kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
  endpoint) echo "$ENDPOINT" ;;
  start)
    if healthy "$HEALTH"; then
      if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "==> $EMULATOR already running at $ENDPOINT; using it as it is" >&2
      else
        echo "==> warning: a $EMULATOR this checkout did not start answers at $ENDPOINT; using it as it is." >&2
        if [ "$EMULATOR" = localstack ]; then
          echo "    The functions run only if it was started by infra/local/localstack_launcher.py (see infra/local/emulator.sh)." >&2
        fi
      fi
      echo "$ENDPOINT"; exit 0
    fi
    if [ "$EMULATOR" = moto ]; then
      infra/local/install-tools.sh moto >&2
      # moto_launcher.py: moto_server with DynamoDB requests applied atomically (see there).
      MOTO_PORT="${MOTO_PORT:-4599}" "$T/moto-venv/bin/python" infra/local/moto_launcher.py \
        127.0.0.1 "${MOTO_PORT:-4599}" >"$RUN/moto.log" 2>&1 &
      echo $! >"$PIDFILE"
    else
      infra/local/install-tools.sh localstack >&2
      ROOT="$T/localstack-root"
      mkdir -p "$ROOT/tmp"
      # exec, so the recorded pid is LocalStack's own.
      ( cd "$ROOT" && exec env OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$ROOT" \
          GATEWAY_SERVER=hypercorn GATEWAY_LISTEN=127.0.0.1:4566 LOCALSTACK_HOST=127.0.0.1:4566 \
          SQS_ENDPOINT_STRATEGY=path DYNAMODB_IN_MEMORY=1 DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
          LAMBDA_KEEPALIVE_MS=120000 STEADFAST_FUNCTION_ENV_DIR="$RUN/function-env" \
          LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC=0.05 LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC=0.5 \
          STEADFAST_LAMBDA_LOG_DIR="$PROJ/target/steadfast/lambda-logs" \
          JAVA_TOOL_OPTIONS="-Djava.io.tmpdir=$ROOT/tmp" TMPDIR="$ROOT/tmp" \
          "$T/localstack-venv/bin/python" "$PROJ/infra/local/localstack_launcher.py" ) >"$RUN/localstack.log" 2>&1 &
      echo $! >"$PIDFILE"
    fi
    # A start that fails ends what it started.
    failed() { echo "$1" >&2; stop_and_wait "$(cat "$PIDFILE")"; rm -f "$PIDFILE"; exit 1; }
    for _ in $(seq 1 120); do
      if healthy "$HEALTH"; then
        if [ "$EMULATOR" = localstack ]; then
          AWS_ENDPOINT_URL="$ENDPOINT" "$T/localstack-venv/bin/python" infra/local/warmup.py >&2 \
            || failed "LocalStack's warm-up failed (above); log: .tools/run/localstack.log"
        fi
        echo "==> $EMULATOR up at $ENDPOINT" >&2; echo "$ENDPOINT"; exit 0
      fi
      if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        tail -n 40 "$RUN/$EMULATOR.log" >&2
        failed "$EMULATOR exited during start; its log is above (.tools/run/$EMULATOR.log)"
      fi
      sleep 0.5
    done
    failed "$EMULATOR did not answer at $HEALTH within 60 s; log: .tools/run/$EMULATOR.log" ;;
  stop)
    if [ -f "$PIDFILE" ]; then
      stop_and_wait "$(cat "$PIDFILE")"
      rm -f "$PIDFILE"
      echo "==> $EMULATOR stopped" >&2
    fi ;;
  *) echo "usage: $0 start|stop|endpoint" >&2; exit 2 ;;
esac
