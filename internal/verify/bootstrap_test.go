package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

// Each check of a first bootstrap's mistakes fails on its planted fixture,
// naming the object.
func TestBootstrapChecksCatchPlantedProblems(t *testing.T) {
	in := inputs(t, "bootstrap-failures")
	fs := run(t, in, "sync policy", "crd ordering", "metrics sources", "priorities", "images", "secret producers", "workload settings")
	expectFindings(t, fs,
		// sync policy
		`Application/argocd/store: spec.syncPolicy.retry.limit is 5; a first bootstrap needs at least 10`,
		`Application/argocd/env: spec.syncPolicy.retry is missing`,
		// crd ordering
		`Application/argocd/store: syncs ClusterSecretStore/local (ClusterSecretStore.external-secrets.io), whose CRD another Application of this bootstrap installs, without SkipDryRunOnMissingResource=true`,
		// metrics sources
		`HorizontalPodAutoscaler/fixture-prod/web: spec.metrics[0] is a Resource metric, served by APIService v1beta1.metrics.k8s.io, which nothing here installs`,
		// priorities
		`PriorityClass/fixture-prod: value 2000000 reaches the platform's platform-critical (1000000)`,
		`Deployment/argocd/controller: a platform component with priorityClassName ""; want platform-critical`,
		// images
		`image ghcr.io/example/web:v0.1.0: workflow.yaml publishes release tags, and this repository has no tag v0.1.0`,
		`image ghcr.io/example/web:sha-000000000000: workflow.yaml publishes sha-<commit on main>, and 000000000000 is no commit`,
		`image example/controller:master: a third-party image must be pinned to a release tag or a digest, not "master"`,
		// secret producers
		`Deployment/fixture-prod/web: reads Secret fixture-prod/missing-secret, which nothing produces`,
		`ExternalSecret/argocd/grafana-admin: spec.data[0] reads property user of grafana-admin, which bootstrap does not generate (keys: password, username)`,
		`ExternalSecret/argocd/grafana-admin: spec.data[1] reads not-generated from store local, which is not among the secrets bootstrap generates`,
		// workload settings
		`container web: GOMEMLIMIT comes from valueFrom (resourceFieldRef limits.memory is 100% of the limit)`,
		`container web: ML_INFERENCE_DRAIN_DELAY is 5s`,
		`Deployment/argocd/grafana: container grafana: Grafana 12 downloads preinstalled plugins`,
	)
	if len(fs) != 16 {
		t.Errorf("%d findings, want 16:\n%s", len(fs), findingsText(fs))
	}
}

// GOMEMLIMIT is read as the Go runtime reads it.
func TestGoMemLimit(t *testing.T) {
	for _, c := range []struct {
		v, limit string
		ok       bool
	}{
		{"57MiB", "64Mi", true}, {"64MiB", "64Mi", false}, {"60000000", "64Mi", true},
		{"1GiB", "1Gi", false}, {"20MiB", "64Mi", false}, {"57M", "64Mi", false},
	} {
		msg := judgeMemLimit(map[string]any{"value": c.v}, c.limit)
		if (msg == "") != c.ok {
			t.Errorf("GOMEMLIMIT %s of %s: %q, want ok=%v", c.v, c.limit, msg, c.ok)
		}
	}
}

// A ClusterExternalSecret produces its Secret in the namespaces its
// selectors name, and only there.
func TestClusterExternalSecretProducesInSelectedNamespaces(t *testing.T) {
	ces := parse(t, `apiVersion: external-secrets.io/v1
kind: ClusterExternalSecret
metadata: {name: key-dev}
spec:
  externalSecretName: key
  namespaceSelectors:
    - matchLabels: {kubernetes.io/metadata.name: app-dev}
    - matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [app-qa]}]
  externalSecretSpec:
    secretStoreRef: {kind: ClusterSecretStore, name: store}
    target: {name: key}
    data: [{secretKey: key, remoteRef: {key: key-dev, property: key}}]
`)
	pod := func(ns string) render.Object {
		return parse(t, `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: `+ns+`}
spec:
  containers: [{name: web, image: "x:1", env: [{name: K, valueFrom: {secretKeyRef: {name: key, key: key}}}]}]
`)
	}
	r := &Rendered{Order: []string{"a"}, Objects: map[string][]render.Object{"a": {ces, pod("app-dev"), pod("app-qa"), pod("app-prod")}}}
	fs, _, err := checkSecretProducers(context.Background(), &Inputs{Repo: &gitops.Repository{}, Rendered: r})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || !strings.Contains(fs[0].String(), "Pod/app-prod/web: reads Secret app-prod/key, which nothing produces") {
		t.Errorf("findings:\n%s", findingsText(fs))
	}
}
