# Steadfast: every command a user or CI runs. See README.md, or `make help`.

SHELL := /bin/bash
EMULATOR ?= localstack
export EMULATOR
# A fixed cache: cargo-lambda's zig cache path is part of cargo's fingerprints.
export XDG_CACHE_HOME := $(CURDIR)/.tools/cache
export PATH := $(CURDIR)/.tools/lambda-venv/bin:$(PATH)
# Host builds go to target/<host triple>/, so cargo test and cargo lambda share one build.
export CARGO_BUILD_TARGET ?= $(shell rustc -vV | sed -n 's/^host: //p')
ARCH ?= arm64

.PHONY: help tools zips test demo load bench stack build lint deploy clean

help:
	@echo "make test    unit tests, the adapters' contract tests on the emulator, and on LocalStack"
	@echo "             the end-to-end suite on the deployed template (EMULATOR=localstack|moto)"
	@echo "make demo    the three scenarios with faults on the local stack; target/steadfast/demo-report.json"
	@echo "make load    10 000 messages through each pipeline on the local stack (functions built release):"
	@echo "             throughput, peak memory, accounting; target/steadfast/load-report.json"
	@echo "make bench   Steadfast beside naive send-and-retry (functions built release): outage, cost, latency,"
	@echo "             throughput, footprint; target/steadfast/bench-report.json and docs/bench.svg"
	@echo "make stack   deploys the template to LocalStack and keeps it running; TARGET_URL=... PROBE_URL=..."
	@echo "             PORTAL_URL=... PORTAL_PROBE_URL=... for your own API; writes target/steadfast/stack.json"
	@echo "make build   release Lambda artifacts with cargo-lambda (ARCH=arm64, x86-64 fallback)"
	@echo "make lint    fmt, clippy -D warnings, cfn-lint, sam validate --lint, checkov"
	@echo "make deploy  sam build + sam deploy with infra/samconfig.toml to your AWS account"
	@echo "make clean   removes target/ and .tools/"

tools:
	@infra/local/install-tools.sh lambda $(EMULATOR)

# The functions as the local stack deploys them (cargo-lambda, for this host).
zips: tools
	@infra/local/zips.sh

test: tools zips
	cargo test --workspace --lib --bins
	infra/local/with-emulator.sh infra/local/e2e.sh

demo: tools
	@PROFILE=release infra/local/zips.sh
	@mkdir -p target/steadfast
	EMULATOR=localstack infra/local/with-emulator.sh cargo run -q -p steadfast-local --bin steadfast-local -- demo $(DEMO_ARGS)

load: tools
	@PROFILE=release infra/local/zips.sh
	@mkdir -p target/steadfast
	PROFILE=release EMULATOR=localstack infra/local/with-emulator.sh cargo run -q -p steadfast-local --bin steadfast-local -- load $(LOAD_ARGS)

bench: tools
	@PROFILE=release infra/local/zips.sh
	@mkdir -p target/steadfast
	PROFILE=release EMULATOR=localstack infra/local/with-emulator.sh cargo run -q -p steadfast-tests --bin bench -- $(BENCH_ARGS)

stack: tools
	@PROFILE=release infra/local/zips.sh
	EMULATOR=localstack infra/local/with-emulator.sh cargo run -q -p steadfast-local --bin steadfast-local -- stack

build: tools
	@infra/local/build.sh $(ARCH)

lint:
	@infra/local/install-tools.sh lint
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	.tools/lint-venv/bin/cfn-lint infra/template.yaml
	SAM_CLI_TELEMETRY=0 .tools/sam-venv/bin/sam validate --lint -t infra/template.yaml --region us-east-1
	.tools/checkov-venv/bin/checkov --quiet --compact --skip-download -f infra/template.yaml --framework cloudformation

# The SAM CLI and cargo-lambda from .tools (installed here if missing).
deploy:
	@infra/local/install-tools.sh lambda lint
	cd infra && SAM_CLI_TELEMETRY=0 ../.tools/sam-venv/bin/sam build --config-file samconfig.toml \
	  && SAM_CLI_TELEMETRY=0 ../.tools/sam-venv/bin/sam deploy --config-file samconfig.toml $(DEPLOY_ARGS)

clean:
	cargo clean
	rm -rf .tools
