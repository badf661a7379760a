#!/usr/bin/env bash
# `make verify`: render every Kustomize entry point, run the structural checks,
# and validate every object on a real kube-apiserver + etcd (built once from
# the pinned modules under tools/ and cached; see tools/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
KUBEBUILDER_ASSETS="$(hack/tools.sh kubebuilder-assets)"
PLATFORMCTL_CRD_DIRS="$(hack/tools.sh crds | paste -sd: -)"
export KUBEBUILDER_ASSETS PLATFORMCTL_CRD_DIRS
go run ./cmd/platformctl verify "$@"
