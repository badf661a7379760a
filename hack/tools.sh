#!/usr/bin/env bash
# Build, pin and cache the third-party tools that tests run, from the small Go
# modules under tools/ (one module per tool: their replace blocks conflict).
#
#   hack/tools.sh TOOL...             build each tool if it is not cached yet;
#                                     prints nothing on stdout
#   hack/tools.sh path TOOL           build if needed, print the binary's path
#   hack/tools.sh kubebuilder-assets  build kube-apiserver and etcd if needed
#                                     and print ONE line: a directory holding
#                                     both (what envtest's KUBEBUILDER_ASSETS
#                                     wants)
#   hack/tools.sh crds                print one directory of CRD manifests per
#                                     line, from the modules pinned in
#                                     tools/crds/go.mod (module cache)
#   hack/tools.sh kwok-stages         print one directory of kwok stage files
#                                     per line, from the kwok module pinned in
#                                     tools/kwok/go.mod (module cache)
#   hack/tools.sh list                the tools this script knows
#
# Tools: kube-apiserver, kube-controller-manager and kube-scheduler (all
# tools/kubernetes: one k8s.io/kubernetes release), etcd (tools/etcd), kwok
# (tools/kwok: the fake kubelets of internal/testcluster), rollouts-controller
# and kubectl-argo-rollouts (both tools/argo-rollouts: the Argo Rollouts
# controller and its kubectl plugin),
# kyverno (tools/kyverno: the Kyverno CLI), gitleaks (tools/gitleaks: the
# secret scanner behind hack/secrets.sh), promtool (tools/promtool: Prometheus'
# rule checker), victoria-metrics, vmalert and vmagent (all tools/victoriametrics:
# the single-node VictoriaMetrics server, its rule evaluator and its scraper),
# amtool (tools/alertmanager: Alertmanager's config checker), helm
# (tools/helm: renders the pinned upstream charts for test/charts), otelcol
# (tools/otelcol: an OpenTelemetry Collector with the OTLP receiver, the file
# exporter and the gateway's components, binary otelcol-platform).
# actionlint (tools/actionlint: the GitHub Actions workflow linter), kind
# (tools/kind: local clusters for `make cluster`; needs Docker only to run),
# syft (tools/syft: the SBOM of the image hack/image.sh builds).
#
# The version of each tool is read from its module's go.mod, the one place
# that pins it. Binaries are cached outside the work tree, so a fresh clone
# (CI) reuses a warm build:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform/tools/<tool>/<version>/<binary>
# and bin/tools/<binary> in the repo is a symlink to it. A cold build prints
# progress on stderr; stdout only ever carries the requested paths. Runs may
# overlap: a lock per tool makes a second run wait for the first build.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform/tools"
export GOWORK=off # each tools/ module stands alone

die() {
  echo "hack/tools.sh: $*" >&2
  exit 1
}

# tool_spec TOOL sets, for TOOL: mod_dir (its module), pin (the module whose
# version names the build), pkg (the main package), bin (binary name),
# ldflags, and eta (rough cold-build time on 2 cores, for the progress line).
tool_spec() {
  case "$1" in
  kube-apiserver | kube-controller-manager | kube-scheduler)
    # One module, one release, three binaries.
    mod_dir=tools/kubernetes
    pin=k8s.io/kubernetes
    pkg=k8s.io/kubernetes/cmd/$1
    bin=$1
    case "$1" in
    kube-apiserver) eta="~10 min on 2 cores" ;;
    kube-controller-manager) eta="~4 min on 2 cores after kube-apiserver" ;;
    kube-scheduler) eta="~1 min on 2 cores after kube-controller-manager" ;;
    esac
    ;;
  kwok)
    mod_dir=tools/kwok
    pin=sigs.k8s.io/kwok
    pkg=sigs.k8s.io/kwok/cmd/kwok
    bin=kwok
    eta="~3 min on 2 cores"
    ;;
  rollouts-controller | kubectl-argo-rollouts)
    # One module, one version, two binaries.
    mod_dir=tools/argo-rollouts
    pin=github.com/argoproj/argo-rollouts
    pkg=github.com/argoproj/argo-rollouts/cmd/$1
    bin=$1
    case "$1" in
    rollouts-controller) eta="~10 min on 2 cores" ;;
    kubectl-argo-rollouts) eta="~1 min on 2 cores after rollouts-controller" ;;
    esac
    ;;
  etcd)
    mod_dir=tools/etcd
    pin=go.etcd.io/etcd/server/v3
    pkg=go.etcd.io/etcd/server/v3
    bin=etcd
    eta="~2 min on 2 cores"
    ;;
  kyverno)
    mod_dir=tools/kyverno
    pin=github.com/kyverno/kyverno
    pkg=github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno
    bin=kyverno
    eta="~12 min on 2 cores"
    ;;
  gitleaks)
    mod_dir=tools/gitleaks
    pin=github.com/zricethezav/gitleaks/v8
    pkg=github.com/zricethezav/gitleaks/v8
    bin=gitleaks
    eta="~2 min on 2 cores"
    ;;
  promtool)
    mod_dir=tools/promtool
    pin=github.com/prometheus/prometheus
    pkg=github.com/prometheus/prometheus/cmd/promtool
    bin=promtool
    eta="~7 min on 2 cores"
    ;;
  victoria-metrics | vmalert | vmagent)
    # One module, one version, three binaries.
    mod_dir=tools/victoriametrics
    pin=github.com/VictoriaMetrics/VictoriaMetrics
    pkg=github.com/VictoriaMetrics/VictoriaMetrics/app/$1
    bin=$1
    eta="~1 min on 2 cores"
    ;;
  helm)
    mod_dir=tools/helm
    pin=helm.sh/helm/v3
    pkg=helm.sh/helm/v3/cmd/helm
    bin=helm
    eta="~5 min on 2 cores"
    ;;
  amtool)
    mod_dir=tools/alertmanager
    pin=github.com/prometheus/alertmanager
    pkg=github.com/prometheus/alertmanager/cmd/amtool
    bin=amtool
    eta="~2 min on 2 cores"
    ;;
  otelcol)
    # main.go in the module itself assembles the distribution (what ocb
    # would generate); the version is the core otelcol module's.
    mod_dir=tools/otelcol
    pin=go.opentelemetry.io/collector/otelcol
    pkg=github.com/ml-platform/platform/tools/otelcol
    bin=otelcol-platform
    eta="~2 min on 2 cores"
    ;;
  actionlint)
    mod_dir=tools/actionlint
    pin=github.com/rhysd/actionlint
    pkg=github.com/rhysd/actionlint/cmd/actionlint
    bin=actionlint
    eta="~1 min on 2 cores"
    ;;
  kind)
    mod_dir=tools/kind
    pin=sigs.k8s.io/kind
    pkg=sigs.k8s.io/kind
    bin=kind
    eta="~2 min on 2 cores"
    ;;
  syft)
    mod_dir=tools/syft
    pin=github.com/anchore/syft
    pkg=github.com/anchore/syft/cmd/syft
    bin=syft
    eta="~8 min on 2 cores"
    ;;
  *) die "unknown tool '$1' (known: $(list | paste -sd' ' -); or kubebuilder-assets, crds, kwok-stages, path TOOL, list)" ;;
  esac
  version="$(gomod_version "$repo/$mod_dir/go.mod" "$pin")"
  [[ -n "$version" ]] || die "$1: no 'require $pin vX.Y.Z' in $mod_dir/go.mod"
  ldflags="-s -w"
  if [[ "$1" == kyverno ]]; then
    # What upstream's Makefile stamps, so `kyverno version` names the release.
    ldflags+=" -X github.com/kyverno/kyverno/pkg/version.BuildVersion=$version"
  fi
  if [[ "$1" == gitleaks ]]; then
    # What upstream's Makefile stamps, so `gitleaks version` names the release.
    ldflags+=" -X github.com/zricethezav/gitleaks/v8/version.Version=$version"
  fi
  if [[ "$1" == promtool ]]; then
    # Prometheus 3.X.Y is published as Go module version v0.3XX.Y; upstream's
    # build (promu) stamps the plain release (its VERSION file, e.g. 3.16.0),
    # which `promtool --version` prints.
    local minor patch
    IFS=. read -r _ minor patch <<<"$version"
    [[ "$minor" =~ ^3[0-9][0-9]$ ]] || die "promtool: cannot map module version $version to a Prometheus 3.x release"
    ldflags+=" -X github.com/prometheus/common/version.Version=3.$((10#${minor:1})).$patch"
    ldflags+=" -X github.com/prometheus/common/version.Branch=HEAD"
  fi
  if [[ "$1" == helm ]]; then
    # What upstream's Makefile stamps, so `helm version` names the release.
    ldflags+=" -X helm.sh/helm/v3/internal/version.version=$version"
  fi
  if [[ "$1" == amtool ]]; then
    # What upstream's build (promu) stamps, so `amtool --version` names the release.
    ldflags+=" -X github.com/prometheus/common/version.Version=${version#v}"
  fi
  if [[ "$1" == victoria-metrics || "$1" == vmalert || "$1" == vmagent ]]; then
    # Upstream's Makefile stamps <app>-<date>-<git describe>; without a date
    # (reproducible) it is <app>-tags-<version>, which `-version` prints and
    # from which buildinfo.ShortVersion() still extracts the release.
    ldflags+=" -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=$1-tags-$version"
  fi
  if [[ "$1" == rollouts-controller || "$1" == kubectl-argo-rollouts ]]; then
    # What upstream's Makefile stamps (it also stamps the git commit, which a
    # module download does not carry): `version` prints v1.10.1+unknown.
    ldflags+=" -X github.com/argoproj/argo-rollouts/utils/version.version=${version#v}"
    ldflags+=" -X github.com/argoproj/argo-rollouts/utils/version.gitTag=$version"
    ldflags+=" -X github.com/argoproj/argo-rollouts/utils/version.gitTreeState=clean"
  fi
  if [[ "$1" == actionlint ]]; then
    # What upstream's release build (GoReleaser) stamps: `actionlint -version`.
    ldflags+=" -X github.com/rhysd/actionlint.version=${version#v}"
  fi
  if [[ "$1" == syft ]]; then
    # What upstream's release build stamps: `syft version` and the SBOM's
    # creator field name the release.
    ldflags+=" -X main.version=${version#v}"
  fi
  # kind needs no stamp: its release version is a constant in its source.
  # kwok needs no stamp: its release version is a constant in its source.
  if [[ "$1" == otelcol ]]; then
    # So `otelcol-platform --version` names the pinned collector release.
    ldflags+=" -X main.version=$version"
  fi
  if [[ "$1" == kube-apiserver || "$1" == kube-controller-manager || "$1" == kube-scheduler ]]; then
    check_staging_replaces "$repo/$mod_dir/go.mod" "$version"
    # What upstream's build (hack/lib/version.sh) stamps, so `--version` and
    # the API server's /version report the release instead of v0.0.0-master.
    local major minor
    IFS=. read -r major minor _ <<<"${version#v}"
    local p
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
  fi
  dir="$cache_root/$1/$version"
  if [[ "$pkg" == github.com/ml-platform/platform/* ]]; then
    # Our own main package (tools/otelcol): its code can change without the
    # pinned version changing, so the cache key also hashes the module's files.
    dir+="-$(cat "$repo/$mod_dir"/*.go "$repo/$mod_dir/go.mod" "$repo/$mod_dir/go.sum" | sha256sum | cut -c1-12)"
  fi
}

# gomod_version GO_MOD MODULE prints the version that GO_MOD requires of
# MODULE (single-line or block require; replace lines never match).
gomod_version() {
  awk -v m="$2" '
    $1 == "require" && $2 == m && $3 ~ /^v/ { print $3; exit }
    $1 == m && $2 ~ /^v/                   { print $2; exit }
  ' "$1"
}

# k8s.io/kubernetes vA.B.C builds only with every k8s.io staging module
# replaced by its v0.B.C tag; a bump that misses one fails late and oddly.
check_staging_replaces() {
  local want="v0.${2#v1.}" bad
  bad="$(awk -v want="$want" '
    $1 ~ /^k8s\.io\// && $2 == "=>" && $4 != want { print "  " $0 }
  ' "$1")"
  [[ -z "$bad" ]] || die "${1#"$repo"/} pins k8s.io/kubernetes $2, so every staging replace must be $want; these are not:
$bad"
}

# ensure TOOL: the cached binary exists afterwards (built if missing) and
# bin/tools/<binary> points at it. Sets the same variables as tool_spec.
ensure() {
  tool_spec "$1"
  if [[ ! -x "$dir/$bin" ]]; then
    mkdir -p "$dir"
    # One build per tool at a time, across clones and shells: a run that
    # finds the lock taken waits, then finds the binary already built.
    exec {lock_fd}>"$cache_root/$1/.lock"
    if ! flock -n "$lock_fd"; then
      echo "hack/tools.sh: waiting for another build of $1 $version..." >&2
      flock "$lock_fd"
    fi
    [[ -x "$dir/$bin" ]] || build "$1"
    exec {lock_fd}>&-
  fi
  link "$dir/$bin" "$repo/bin/tools/$bin"
}

build() {
  local tool="$1" tmp="$dir/.$bin.tmp.$$" start rc=0
  echo "hack/tools.sh: building $tool $version (cold build, $eta) into $dir ..." >&2
  start="$(date +%s)"
  # Build to a temporary name and rename, so an interrupted build never
  # leaves a half-written binary that later runs would trust.
  (cd "$repo/$mod_dir" && CGO_ENABLED=0 exec go build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg") >&2 &
  local build_pid=$!
  # Heartbeat every 30 s. It ticks each second so that, once killed, no
  # stray `sleep` holds stdout (a caller's $(...) would wait for it) or the
  # lock for long; and it drops the lock fd.
  (
    exec {lock_fd}>&-
    n=0
    while sleep 1; do
      n=$((n + 1))
      if ((n % 30 == 0)); then
        echo "hack/tools.sh: ... still building $tool $version ($(($(date +%s) - start))s elapsed)"
      fi
    done
  ) >&2 &
  local beat_pid=$!
  # shellcheck disable=SC2064 # expand the pids now
  trap "kill $beat_pid $build_pid 2>/dev/null; rm -f '$tmp'" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  wait "$build_pid" || rc=$?
  kill "$beat_pid" 2>/dev/null || true
  wait "$beat_pid" 2>/dev/null || true
  trap - EXIT INT TERM
  if [[ $rc -ne 0 ]]; then
    rm -f "$tmp"
    die "building $tool $version failed (exit $rc): see the go build output above; module $mod_dir, package $pkg"
  fi
  mv -f "$tmp" "$dir/$bin"
  echo "hack/tools.sh: built $tool $version in $(($(date +%s) - start))s: $dir/$bin" >&2
}

# link TARGET LINK makes LINK a symlink to TARGET, replacing it atomically
# (rename), and leaves it alone when it is already right.
link() {
  [[ "$(readlink "$2" 2>/dev/null)" == "$1" ]] && return 0
  mkdir -p "$(dirname "$2")"
  ln -sfn "$1" "$2.tmp.$$"
  mv -Tf "$2.tmp.$$" "$2"
}

kubebuilder_assets() {
  ensure kube-apiserver
  local apiserver="$dir/$bin" apiserver_version="$version"
  ensure etcd
  local etcd="$dir/$bin" etcd_version="$version"
  # One directory per version pair, in the cache (outside the work tree), with
  # the two names envtest looks for.
  local assets="$cache_root/kubebuilder-assets/kube-apiserver-${apiserver_version}_etcd-${etcd_version}"
  link "$apiserver" "$assets/kube-apiserver"
  link "$etcd" "$assets/etcd"
  echo "$assets"
}

# module_dirs MOD_DIR TAG prints, for each `<module> <version> // TAG: <dir>...`
# line of MOD_DIR/go.mod (the comment may follow `indirect;`), those dirs
# inside the downloaded module (checked against MOD_DIR/go.sum).
module_dirs() {
  local mod_dir="$1" tag="$2" go_mod="$repo/$1/go.mod" lines mod ver dirs json mdir d n=0
  lines="$(awk -v tag="$tag" '
    !/^[ \t]*\/\// && $0 ~ "(//|;) *" tag ":" {
      if ($1 == "require") { mod = $2; ver = $3 } else { mod = $1; ver = $2 }
      dirs = $0
      sub(".*" tag ":", "", dirs)
      print mod, ver, dirs
    }' "$go_mod")"
  [[ -n "$lines" ]] || die "$tag: no '<module> <version> // $tag: <dir>' line in $mod_dir/go.mod"
  while read -r mod ver dirs; do
    json="$(cd "$repo/$mod_dir" && go mod download -json "$mod@$ver")" ||
      die "$tag: go mod download $mod@$ver failed: $(sed -n 's/^[[:space:]]*"Error": "\(.*\)",*$/\1/p' <<<"$json")"
    mdir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' <<<"$json")"
    [[ -d "$mdir" ]] || die "$tag: go mod download $mod@$ver gave no module directory"
    for d in $dirs; do
      compgen -G "$mdir/$d/*.yaml" >/dev/null || die "$tag: $mod@$ver has no $d/*.yaml"
      echo "$mdir/$d"
      n=$((n + 1))
    done
  done <<<"$lines"
  ((n > 0)) || die "$tag: no directory listed in $mod_dir/go.mod"
}

# list prints the tools this script builds.
list() {
  printf '%s\n' kube-apiserver kube-controller-manager kube-scheduler etcd kwok \
    rollouts-controller kubectl-argo-rollouts kyverno gitleaks promtool \
    victoria-metrics vmalert vmagent amtool helm otelcol actionlint kind syft
}

[[ $# -gt 0 ]] || die "usage: hack/tools.sh TOOL... | path TOOL | kubebuilder-assets | crds | kwok-stages | list"
mkdir -p "$cache_root"
case "$1" in
kubebuilder-assets)
  [[ $# -eq 1 ]] || die "kubebuilder-assets takes no arguments"
  kubebuilder_assets
  ;;
crds)
  [[ $# -eq 1 ]] || die "crds takes no arguments"
  module_dirs tools/crds crds
  ;;
kwok-stages)
  [[ $# -eq 1 ]] || die "kwok-stages takes no arguments"
  module_dirs tools/kwok stages
  ;;
path)
  [[ $# -eq 2 ]] || die "usage: hack/tools.sh path TOOL"
  ensure "$2"
  echo "$dir/$bin"
  ;;
list)
  list
  ;;
*)
  for t in "$@"; do ensure "$t"; done
  ;;
esac
