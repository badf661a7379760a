#!/usr/bin/env bash
# A local cluster running the whole platform (make cluster / make
# cluster-down). Needs a Docker engine; everything else is pinned here:
#
#   1. kind (tools/kind) creates cluster "ml-platform" from
#      infrastructure/local/kind.yaml: three nodes in three zones;
#   2. hack/image.sh builds the image from this checkout, without Docker,
#      tagged with the tags dev and staging deploy, and kind loads it into
#      every node (pods pull nothing: imagePullPolicy IfNotPresent);
#   3. platformctl bootstrap installs Argo CD from infrastructure/argocd/install
#      (what the argocd Application then syncs: one source for its
#      settings), generates the local secret store (grafana-admin,
#      argocd-admin with its bcrypt hash and mtime: platform.yaml secrets),
#      stores a token for a private fork if REPO_TOKEN_FILE is set, and
#      applies the root Application with path infrastructure/local/apps
#      (every Application but prod; metrics-server with
#      --kubelet-insecure-tls).
#
# Argo CD syncs from Git, not from this checkout: REPO (default: the origin
# remote, as https) at REVISION (default: the current branch) must be pushed.
#
#   hack/cluster.sh up      REPO=... REVISION=... REPO_TOKEN_FILE=... (all optional)
#   hack/cluster.sh down
set -euo pipefail
cd "$(dirname "$0")/.."

name=ml-platform
dir=bin/cluster
kubeconfig="$dir/kubeconfig"

die() {
  echo "hack/cluster.sh: $*" >&2
  exit 1
}

# origin_https prints the origin remote as an https URL (Argo CD clones it).
origin_https() {
  local url
  url="$(git remote get-url origin 2>/dev/null)" || return 1
  case "$url" in
  git@*:*) url="https://${url#git@}"; url="${url/://}" ;; # git@host:org/repo -> https://host/org/repo
  esac
  echo "$url"
}

up() {
  command -v docker >/dev/null || die "needs Docker (kind runs each node as a container); install Docker Engine or Docker Desktop"
  docker info >/dev/null 2>&1 || die "the Docker engine is not running (docker info failed)"
  local repo="${REPO:-$(origin_https || true)}"
  local revision="${REVISION:-$(git rev-parse --abbrev-ref HEAD)}"
  [[ -n "$repo" ]] || die "set REPO=https://github.com/<you>/platform.git (no origin remote to default to)"

  local kind
  kind="$(hack/tools.sh path kind)"
  mkdir -p "$dir"
  if "$kind" get clusters 2>/dev/null | grep -qx "$name"; then
    echo "==> kind cluster $name exists"
  else
    echo "==> kind create cluster $name (infrastructure/local/kind.yaml)"
    "$kind" create cluster --config infrastructure/local/kind.yaml --wait 120s
  fi
  "$kind" export kubeconfig --name "$name" --kubeconfig "$kubeconfig"

  echo "==> image (no Docker build: hack/image.sh), loaded into the nodes"
  local platformctl=bin/platformctl tags=()
  CGO_ENABLED=0 go build -trimpath -o "$platformctl" ./cmd/platformctl
  # One image built from this checkout, under every tag the local apps
  # deploy: dev's and staging's ml-inference, and ml-platform's (the canary
  # judge and the model seed run /platformctl from the same image).
  local where tag
  for where in "--env dev" "--env staging" "--dir infrastructure/base/ml-platform"; do
    # shellcheck disable=SC2086 # two words: the flag and its value
    tag="ghcr.io/ml-platform/ml-inference:$("$platformctl" image tag $where 2>/dev/null)"
    [[ " ${tags[*]} " == *" $tag "* ]] || tags+=("$tag")
  done
  hack/image.sh --tag "$(IFS=,; echo "${tags[*]}")"
  "$kind" load image-archive bin/image/image.tar --name "$name"

  echo "==> Argo CD, the secret store, the root Application ($repo at $revision)"
  local token_args=()
  if [[ -n "${REPO_TOKEN_FILE:-}" ]]; then
    token_args=(--repo-token-file "$REPO_TOKEN_FILE")
  fi
  "$platformctl" bootstrap --repo "$repo" --revision "$revision" \
    --path infrastructure/local/apps --kubeconfig "$kubeconfig" \
    --install-argocd --secrets "${token_args[@]}" 2>&1 | grep -v 'disable exposing PSI metrics'

  cat <<EOT

The root Application syncs in waves (infrastructure/README.md); the first
sync takes several minutes. Follow it with:
  export KUBECONFIG=$PWD/$kubeconfig
  kubectl -n argocd get applications -w
Argo CD's UI: kubectl -n argocd port-forward svc/argocd-server 8081:443, user admin,
  password: kubectl -n secret-store get secret argocd-admin -o jsonpath='{.data.password}' | base64 -d
Grafana: kubectl -n observability port-forward svc/grafana 3000, user admin, password from
  secret-store/grafana-admin the same way.
ml-inference through the gateway: curl -H 'Host: dev.ml-inference.localhost' http://127.0.0.1:8080/predict -d '{"text":"great"}'
Delete it all: make cluster-down
EOT
}

down() {
  local kind
  kind="$(hack/tools.sh path kind)"
  "$kind" delete cluster --name "$name"
  rm -f "$kubeconfig"
}

case "${1:-}" in
up) up ;;
down) down ;;
*) die "usage: hack/cluster.sh up|down" ;;
esac
