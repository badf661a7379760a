#!/usr/bin/env bash
# Secret scanning: gitleaks (pinned in tools/gitleaks, built and cached by
# hack/tools.sh) over the whole Git history of this repository, every branch
# and tag, with gitleaks' default rules. Any finding fails (exit 1); secrets
# are redacted from the output. Then the test that proves the scanner catches
# a planted key and passes a clean repository (test/secrets).
#
#   hack/secrets.sh            scan the history, then run the planted-key test
#   hack/secrets.sh --no-test  scan only
#
# A finding is handled by rotating the secret first (it is public from the
# moment it was pushed), then rewriting history if needed; a false positive is
# fingerprinted in .gitleaksignore, with a comment saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
GITLEAKS_BIN="$(hack/tools.sh path gitleaks)"
export GITLEAKS_BIN
echo "secrets: $("$GITLEAKS_BIN" version) over the history of every ref" >&2
"$GITLEAKS_BIN" git --redact --exit-code 1 --no-banner --log-opts="--all" .
if [[ "${1:-}" != --no-test ]]; then
  go test -count=1 ./test/secrets/
fi
