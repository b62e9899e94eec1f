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
# Every function crate under functions/ (its directory name is its binary's name).
functions=$(cd functions && ls -d */ | tr -d / | sort)
bins=$(for f in $functions; do printf -- '--bin %s ' "$f"; done)
# shellcheck disable=SC2086
cargo lambda build --release $flag --lambda-dir "target/lambda-$arch" $bins
for f in $functions; do
  printf '%-16s %s bytes (%s)\n' "$f" "$(stat -c %s "target/lambda-$arch/$f/bootstrap")" "$arch"
done
