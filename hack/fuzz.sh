#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each. Seed corpora run in `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
for target in "internal/server FuzzRequests" "internal/model FuzzModels" "internal/judge FuzzParseRequest"; do
  read -r pkg name <<<"$target"
  echo "==> $name ($pkg, $FUZZTIME)"
  go test "./$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME"
done
