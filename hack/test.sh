#!/usr/bin/env bash
# What `make test` and CI run. It installs nothing by hand: Go modules come
# from the module proxy; kube-apiserver and etcd are built from the pinned
# modules under tools/ on first use and cached outside the work tree
# (hack/tools.sh); python3 (for the differential test against the seed's
# classifier) is part of the supported machine image.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> lint"
hack/lint.sh

if ! command -v python3 >/dev/null; then
  echo "python3 is required (the v1 model is checked answer for answer against the seed's Python)." >&2
  echo "Install it with your package manager, e.g. apt-get install -y python3." >&2
  exit 1
fi

echo "==> tools: kube-apiserver and etcd for envtest, kube-controller-manager, kube-scheduler, kwok and Argo Rollouts (controller, kubectl plugin) for the simulated cluster, Kyverno, gitleaks, promtool, VictoriaMetrics (server, vmalert, vmagent), amtool, Helm, the OpenTelemetry Collector, actionlint (cached after the first build)"
KUBEBUILDER_ASSETS="$(hack/tools.sh kubebuilder-assets)"
PLATFORMCTL_CRD_DIRS="$(hack/tools.sh crds | paste -sd: -)"
KYVERNO_BIN="$(hack/tools.sh path kyverno)"
GITLEAKS_BIN="$(hack/tools.sh path gitleaks)"
PROMTOOL_BIN="$(hack/tools.sh path promtool)"
VMALERT_BIN="$(hack/tools.sh path vmalert)"
VICTORIA_METRICS_BIN="$(hack/tools.sh path victoria-metrics)" # test/slolive: the SLO live run
export VICTORIA_METRICS_BIN
VMAGENT_BIN="$(hack/tools.sh path vmagent)"  # test/observability: the stack's configuration
AMTOOL_BIN="$(hack/tools.sh path amtool)"
HELM_BIN="$(hack/tools.sh path helm)"        # test/charts: the upstream charts' pods
ACTIONLINT_BIN="$(hack/tools.sh path actionlint)" # test/workflows: the GitHub Actions workflows
export VMAGENT_BIN AMTOOL_BIN HELM_BIN ACTIONLINT_BIN
export KUBEBUILDER_ASSETS PLATFORMCTL_CRD_DIRS KYVERNO_BIN GITLEAKS_BIN PROMTOOL_BIN VMALERT_BIN
OTELCOL_BIN="$(hack/tools.sh path otelcol)" # not `export X="$(...)"`: that would hide a failed build
export OTELCOL_BIN
MLFLOW_VENV="$(hack/venv.sh mlflow)" # internal/mlflow, internal/mlflowtest: a real MLflow server (venv made on first use)
export MLFLOW_VENV
# internal/testcluster's simulated cluster: controllers, scheduler, fake kubelets, Argo Rollouts
KUBE_CONTROLLER_MANAGER_BIN="$(hack/tools.sh path kube-controller-manager)"
KUBE_SCHEDULER_BIN="$(hack/tools.sh path kube-scheduler)"
KWOK_BIN="$(hack/tools.sh path kwok)"
KWOK_STAGE_DIRS="$(hack/tools.sh kwok-stages | paste -sd: -)"
ROLLOUTS_CONTROLLER_BIN="$(hack/tools.sh path rollouts-controller)"
KUBECTL_ARGO_ROLLOUTS_BIN="$(hack/tools.sh path kubectl-argo-rollouts)"
export KUBE_CONTROLLER_MANAGER_BIN KUBE_SCHEDULER_BIN KWOK_BIN KWOK_STAGE_DIRS ROLLOUTS_CONTROLLER_BIN KUBECTL_ARGO_ROLLOUTS_BIN
STATS_PYTHON="$(hack/venv.sh stats)/bin/python" # internal/stats: reference vectors regenerated and compared
export STATS_PYTHON
echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
echo "STATS_PYTHON=$STATS_PYTHON"
echo "MLFLOW_VENV=$MLFLOW_VENV"

echo "==> go test (race detector on)"
go test -race -count=1 ./...

echo "==> platformctl verify: every manifest rendered, checked and validated on kube-apiserver"
go run ./cmd/platformctl verify

echo "==> kyverno test: every policy against its passing, failing and exempted fixtures"
"$KYVERNO_BIN" test test/kyverno --remove-color

echo "==> gitleaks: no secret anywhere in the Git history"
hack/secrets.sh --no-test # the planted-key test ran with go test above

echo "==> recorded model metrics are fresh"
go run ./cmd/platformctl model evaluate --check >/dev/null
echo "model metrics: ok"

echo "==> models/v3 retrains byte for byte from its recorded configuration (the go test skips this under -race)"
go run ./cmd/platformctl model train --check
