package verify

import (
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/gitops"
)

// Each planted violation is a finding naming the object and the failing
// Pod Security check, in the words kube-apiserver's admission uses.
func TestPodSecurityCatchesPlantedViolations(t *testing.T) {
	c, _ := fixture(t, "pod-security")
	r, fs := Render(c, &gitops.Renderer{})
	if len(fs) > 0 {
		t.Fatalf("render: %s", findingsText(fs))
	}
	fs = PodSecurity(c, r)
	expectFindings(t, fs,
		`Deployment/fixture-dev/web: violates Pod Security "restricted" (latest): privileged (container "web" must not set securityContext.privileged=true)`,
		`Deployment/fixture-dev/web: violates Pod Security "restricted" (latest): host namespaces (hostNetwork=true)`,
		`Deployment/fixture-dev/web: violates Pod Security "restricted" (latest): unrestricted capabilities`,
		`Namespace/fixture-dev: label pod-security.kubernetes.io/enforce=restricted is missing`,
		`Namespace/fixture-baseline: label pod-security.kubernetes.io/enforce is "baseline", want "restricted"; an exception needs an entry`,
		// The excepted namespace is judged at baseline: hostPID still fails...
		`CronJob/fixture-legacy/legacy: violates Pod Security "baseline" (latest): host namespaces (hostPID=true)`,
		`Application/argocd/addon: spec.syncPolicy.managedNamespaceMetadata.labels (CreateNamespace=true creates namespace fixture-addon) pod-security.kubernetes.io/enforce=restricted is missing`,
		`podSecurityExceptions[1]: the exception for namespace "fixture-unexplained" gives no reason`,
	)
	text := findingsText(fs)
	// ...but what only restricted forbids (no seccomp profile, capabilities
	// not dropped) does not, and its Namespace enforcing baseline is right.
	for _, unwanted := range []string{"CronJob/fixture-legacy/legacy: violates Pod Security \"baseline\" (latest): seccompProfile", "Namespace/fixture-legacy"} {
		if strings.Contains(text, unwanted) {
			t.Errorf("findings contain %q:\n%s", unwanted, text)
		}
	}
	if n := len(fs); n != 8 {
		t.Errorf("%d findings, want 8:\n%s", n, text)
	}
}

// The repository itself: every pod template of every environment and entry
// point meets "restricted", and every namespace enforces it (or is excepted
// with a reason in infrastructure/platform.yaml).
func TestPodSecurityOfTheRepository(t *testing.T) {
	c, r := repository(t)
	if fs := PodSecurity(c, r); len(fs) != 0 {
		t.Fatalf("findings:\n%s", findingsText(fs))
	}
	for _, where := range r.Order {
		pods, namespaces := 0, 0
		for _, o := range r.Objects[where] {
			if _, ok := podSpec(o.Unstructured); ok {
				pods++
			}
			if o.GetKind() == "Namespace" {
				namespaces++
			}
		}
		t.Logf("%s: %d pod templates restricted, %d namespaces enforcing", c.Rel(where), pods, namespaces)
	}
}
