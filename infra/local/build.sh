#!/usr/bin/env bash
# Release Lambda artifacts of every function with cargo-lambda: arm64 by default, x86-64 when
# the arm64 target cannot be installed. Prints each artifact's size.
set -euo pipefail
cd "$(dirname "$0")/../.."
arch="${1:-arm64}"
if [ "$arch" = arm64 ] && ! rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu; then
  if ! rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    echo "==> the arm64 target cannot be installed here; building x86-64 instead" >&2
    arch=x86_64
  fi
fi
flag=$([ "$arch" = arm64 ] && echo --arm64 || echo --x86-64)
cargo lambda build --release $flag --lambda-dir "target/lambda-$arch" \
  --bin processor --bin close --bin open --bin backoff --bin outbox-writer --bin outbox-relay
for f in processor close open backoff outbox-writer outbox-relay; do
  printf '%-10s %s bytes (%s)\n' "$f" "$(stat -c %s "target/lambda-$arch/$f/bootstrap")" "$arch"
done
