#!/usr/bin/env bash
# `make verify`: render every Kustomize entry point once, run verify's checks
# in order (environments, Applications, AppProjects, Pod Security, the Kyverno
# policies with the pinned CLI, the network matrix, secrets in Git) and
# validate every object on a real kube-apiserver + etcd (all built once from
# the pinned modules under tools/ and cached; see tools/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
KUBEBUILDER_ASSETS="$(hack/tools.sh kubebuilder-assets)"
PLATFORMCTL_CRD_DIRS="$(hack/tools.sh crds | paste -sd: -)"
KYVERNO_BIN="$(hack/tools.sh path kyverno)" # the policies' stage runs the pinned CLI
export KUBEBUILDER_ASSETS PLATFORMCTL_CRD_DIRS KYVERNO_BIN
go run ./cmd/platformctl verify "$@"
