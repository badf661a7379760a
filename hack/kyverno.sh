#!/usr/bin/env bash
# The Kyverno policies (infrastructure/policies/kyverno), tested with the real
# Kyverno CLI pinned in tools/kyverno (built and cached by hack/tools.sh; the
# first build takes ~12 min on 2 cores):
#
#   1. `kyverno test test/kyverno`: every policy against its passing, failing
#      and exempted (system namespace) fixtures;
#   2. go test ./internal/policy: every environment rendered as Argo CD would
#      render it, and `kyverno apply` of the deployed policy bundle (both
#      modes, with the PolicyExceptions) to it: no violation allowed; plus a
#      planted violation (the seed's nginx:latest Deployment) that must fail.
set -euo pipefail
cd "$(dirname "$0")/.."
KYVERNO_BIN="$(hack/tools.sh path kyverno)"
export KYVERNO_BIN

echo "==> kyverno test test/kyverno ($("$KYVERNO_BIN" version 2>/dev/null | sed -n 's/^Version: //p'))"
"$KYVERNO_BIN" test test/kyverno --remove-color

echo "==> kyverno apply to every rendered environment (go test ./internal/policy)"
go test -count=1 ./internal/policy "$@"
