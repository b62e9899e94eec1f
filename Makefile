# Steadfast: every command a user or CI runs. See README.md.
#   make demo   the main job: local stack + the breaker scenario with faults, report in target/steadfast/
#   make test   unit, integration and end-to-end tests against the emulator (EMULATOR=localstack|moto)
#   make stack  the local stack, left running for manual use
#   make build  release Lambda artifacts (arm64, x86-64 fallback)
#   make lint   fmt, clippy -D warnings; cfn-lint, sam validate --lint and checkov on the template
#   make deploy sam build + sam deploy to a real AWS account (not run here)

SHELL := /bin/bash
EMULATOR ?= localstack
export EMULATOR
# A fixed cache: cargo-lambda's zig cache path is part of cargo's fingerprints.
export XDG_CACHE_HOME := $(CURDIR)/.tools/cache
export PATH := $(CURDIR)/.tools/lambda-venv/bin:$(PATH)
ARCH ?= arm64

.PHONY: tools test test-unit test-e2e demo stack build lint deploy clean

tools:
	@infra/local/install-tools.sh lambda $(EMULATOR)

# Debug binaries the local stack runs (cargo lambda watch reuses them).
bins:
	cargo build --workspace --bins

test: tools bins
	cargo test --workspace --lib --bins
	infra/local/with-emulator.sh infra/local/e2e.sh

demo: tools bins
	@mkdir -p target/steadfast
	infra/local/with-emulator.sh cargo run -q -p steadfast-local --bin steadfast-local -- demo $(DEMO_ARGS)

stack: tools bins
	infra/local/with-emulator.sh cargo run -q -p steadfast-local --bin steadfast-local -- stack

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
	cd infra && SAM_CLI_TELEMETRY=0 ../.tools/sam-venv/bin/sam build --beta-features && SAM_CLI_TELEMETRY=0 ../.tools/sam-venv/bin/sam deploy --guided

clean:
	cargo clean
	rm -rf .tools
