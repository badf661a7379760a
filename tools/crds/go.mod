// Module tools/crds pins the upstream modules whose CustomResourceDefinitions
// tests install into the envtest API server. Nothing here is built: each
// module is only downloaded (`go mod download`, checked against go.sum) and
// `hack/tools.sh crds` prints the CRD directories inside the module cache.
//
// One line per module: `<module> <version> // crds: <dir> [<dir>...]`, the
// dirs relative to the module root. To add or bump one, edit its line, then
// run `GOWORK=off go mod download <module>@<version>` here to record its sums
// in go.sum.
//
// Do NOT run `go mod tidy` in this module: nothing imports these modules, so
// tidy would delete every line below. (A blank import would keep them, but
// it would make tidy resolve, and go.sum list, the whole dependency graph of
// Argo CD for no gain.)
module github.com/ml-platform/platform/tools/crds

go 1.26.8

require (
	github.com/argoproj/argo-cd/v3 v3.5.3 // crds: manifests/crds
	github.com/argoproj/argo-rollouts v1.10.1 // crds: manifests/crds
	// Envoy Gateway (apps/envoy-gateway.yaml: its chart, rendered by
	// test/charts) and the Gateway API CRDs it bundles (v1.6.1), for the
	// Gateway, GatewayClass, HTTPRoute and EnvoyProxy objects verify validates.
	github.com/envoyproxy/gateway v1.9.1 // crds: charts/gateway-helm/charts/crds/crds charts/gateway-helm/charts/crds/crds/generated
	github.com/external-secrets/external-secrets v0.16.2 // crds: config/crds/bases
	github.com/kyverno/kyverno v1.19.1 // crds: config/crds/policies.kyverno.io
	// Kustomize bases only (platform.yaml upstreams): metrics-server's
	// manifests/base; Argo CD's manifests/cluster-install is in the module above.
	sigs.k8s.io/metrics-server v0.8.0
)
