#!/usr/bin/env bash
# Build the container image with no container runtime (make image; the
# release workflow): `platformctl image build` cross-compiles ml-inference
# and platformctl and lays them on scratch as an OCI image index
# (linux/amd64, linux/arm64) in bin/image/oci, plus bin/image/image.tar (the
# host's platform) for `kind load image-archive`; then syft (pinned in
# tools/syft) writes the SPDX SBOM bin/image/sbom.spdx.json.
#
#   hack/image.sh [--tag REF]   default REF: the tag dev deploys, so a local
#                               cluster runs exactly what Git names
#
# Reproducible: every timestamp is the commit's (SOURCE_DATE_EPOCH).
set -euo pipefail
cd "$(dirname "$0")/.."

tag=""
while [[ $# -gt 0 ]]; do
  case "$1" in
  --tag) tag="$2"; shift 2 ;;
  *) echo "usage: hack/image.sh [--tag REF]" >&2; exit 2 ;;
  esac
done

platformctl=bin/platformctl
CGO_ENABLED=0 go build -trimpath -o "$platformctl" ./cmd/platformctl
if [[ -z "$tag" ]]; then
  tag="ghcr.io/ml-platform/ml-inference:$("$platformctl" image tag --env dev 2>/dev/null)"
fi
version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
export SOURCE_DATE_EPOCH

"$platformctl" image build --out bin/image --tag "$tag" --version "$version" --revision "$revision" 2>&1 |
  grep -v 'disable exposing PSI metrics' || true
[[ -f bin/image/image.tar ]] || { echo "hack/image.sh: the build wrote no image" >&2; exit 1; }

syft="$(hack/tools.sh path syft)"
start=$(date +%s)
SYFT_CHECK_FOR_APP_UPDATE=false "$syft" scan "oci-dir:bin/image/oci" --platform "linux/amd64" \
  --source-name ml-inference --source-version "$version" \
  -o "spdx-json=bin/image/sbom.spdx.json" -q
echo "sbom bin/image/sbom.spdx.json ($(($(date +%s) - start))s, $(grep -o '"SPDXID"' bin/image/sbom.spdx.json | wc -l) SPDX elements)"
