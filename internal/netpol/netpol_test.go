package netpol_test

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/netpol"
	"github.com/ml-platform/platform/internal/verify"
)

const repoRoot = "../.."

// rendered renders every environment and entry point of the real repository.
func rendered(t *testing.T) (*gitops.Repository, []*unstructured.Unstructured) {
	t.Helper()
	c, err := gitops.Load(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	ups, err := c.ResolveUpstreams()
	if err != nil {
		t.Fatal(err)
	}
	r, fs := verify.Render(c, &gitops.Renderer{Upstreams: ups})
	for _, e := range c.Environments {
		if _, ok := r.Objects[e.Path]; !ok {
			t.Fatalf("environment %s does not render: %v", e.Name, fs)
		}
	}
	if len(fs) > 0 {
		t.Logf("entry points that do not render (their policies are missing here): %v", fs)
	}
	var objs []*unstructured.Unstructured
	for _, o := range r.All() {
		objs = append(objs, o.Unstructured)
	}
	return c, objs
}

func realMatrix(t *testing.T, c *gitops.Repository) *netpol.Matrix {
	t.Helper()
	m, err := netpol.Load(filepath.Join(repoRoot, "infrastructure/network/connectivity.yaml"), c.EnvironmentNames())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustCluster(t *testing.T, objs []*unstructured.Unstructured) *netpol.Cluster {
	t.Helper()
	cl, err := netpol.NewCluster(objs)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// failures checks the matrix in every environment and returns the failures
// as printed.
func failures(t *testing.T, c *gitops.Repository, m *netpol.Matrix, cl *netpol.Cluster) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, env := range c.EnvironmentNames() {
		for _, f := range cl.Check(m, env).Failures() {
			out[env] = append(out[env], f.String())
		}
	}
	return out
}

func TestRealManifestsMatchTheMatrix(t *testing.T) {
	c, objs := rendered(t)
	m := realMatrix(t, c)
	cl := mustCluster(t, objs)
	// Every namespace with pods or policies has a default deny of both
	// directions: an empty pod selector, Ingress and Egress, no rules.
	namespaces := map[string]bool{}
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "StatefulSet", "DaemonSet", "NetworkPolicy":
			namespaces[o.GetNamespace()] = true
		}
	}
	denied := map[string]bool{}
	for _, p := range cl.Policies {
		if len(p.Spec.PodSelector.MatchLabels)+len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			len(p.Spec.Ingress)+len(p.Spec.Egress) == 0 && len(p.Spec.PolicyTypes) == 2 {
			denied[p.Namespace] = true
		}
	}
	for ns := range namespaces {
		// kube-system is Kubernetes' own (DNS, the CNI): no policy of ours
		// goes there; metrics-server runs there as upstream installs it.
		if !denied[ns] && ns != "kube-system" {
			t.Errorf("namespace %s has workloads or policies but no default deny", ns)
		}
	}
	for _, ns := range []string{"ml-inference-dev", "ml-inference-staging", "ml-inference-prod", "observability", "secret-store", "argocd", "kyverno", "external-secrets"} {
		if !namespaces[ns] {
			t.Errorf("namespace %s renders no policy: the platform owns it", ns)
		}
	}
	for _, env := range c.EnvironmentNames() {
		rep := cl.Check(m, env)
		for _, f := range rep.Failures() {
			t.Errorf("%s", f)
		}
		allowed, denied, pending := rep.Counts()
		t.Logf("%s: %d flows checked (%d allowed, %d denied), %d pending", env, allowed+denied, allowed, denied, pending)
		if allowed == 0 || denied == 0 {
			t.Errorf("%s: %d allowed, %d denied: the matrix must exercise both", env, allowed, denied)
		}
		for _, r := range rep.Results {
			if r.Checked && r.Explain == "" {
				t.Errorf("%s: flow %q has no explanation", env, r.Flow.Name)
			}
		}
	}
}

// The harness catches a wrong expectation and prints the flow.
func TestWrongExpectationIsReported(t *testing.T) {
	c, objs := rendered(t)
	m := realMatrix(t, c)
	for i := range m.Flows {
		if m.Flows[i].Name == "gateway-to-ml-inference" {
			m.Flows[i].Expect = netpol.Deny
		}
	}
	got := failures(t, c, m, mustCluster(t, objs))
	for _, env := range c.EnvironmentNames() {
		if len(got[env]) != 1 {
			t.Fatalf("%s: %d failures, want 1: %q", env, len(got[env]), got[env])
		}
		want := `flow "gateway-to-ml-inference" (` + env + `): envoy-gateway-system/{app.kubernetes.io/component=proxy,app.kubernetes.io/name=envoy,gateway.envoyproxy.io/owning-gateway-name=platform} -> ml-inference-` + env +
			`/{app.kubernetes.io/name=ml-inference}:8000/TCP: expected deny, got allow (egress: allowed by envoy-gateway-system/proxy; ingress: allowed by ml-inference-` + env + `/ml-inference-ingress)`
		if got[env][0] != want {
			t.Errorf("%s:\n got %s\nwant %s", env, got[env][0], want)
		}
	}
}

// A planted allow-all policy in prod opens every denied flow into and out of
// prod; the other environments stay as declared.
func TestAllowAllPolicyIsCaught(t *testing.T) {
	c, objs := rendered(t)
	objs = append(objs, obj(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: ml-inference-prod}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: [{}]
  egress: [{}]
`))
	got := failures(t, c, realMatrix(t, c), mustCluster(t, objs))
	if len(got["dev"])+len(got["staging"]) != 0 {
		t.Errorf("dev and staging should be unaffected: %q", append(got["dev"], got["staging"]...))
	}
	text := strings.Join(got["prod"], "\n")
	// (ml-inference-to-model-registry-other-port stays denied: ml-platform's
	// own ingress policy refuses it, whatever prod's egress allows.)
	for _, name := range []string{"other-namespace-to-ml-inference-health", "ml-inference-to-internet", "same-namespace-pod-to-ml-inference", "ml-inference-to-kube-system-other-pod"} {
		if !strings.Contains(text, `flow "`+name+`" (prod)`) {
			t.Errorf("prod failures lack %s:\n%s", name, text)
		}
	}
	if !strings.Contains(text, "expected deny, got allow") || !strings.Contains(text, "allowed by ml-inference-prod/allow-all;") || strings.Contains(text, "allowed by ml-inference-prod/allow-all, ml-inference-prod/default-deny") {
		t.Errorf("failures do not say what allowed the flow:\n%s", text)
	}
	// Cross-environment flows are still refused by the other end: dev's
	// egress (dev-to-prod) and dev's ingress (prod-to-dev); flows into the
	// observability and ml-platform namespaces by their ingress policies.
	if strings.Contains(text, "prod-to-dev") || strings.Contains(strings.Join(got["dev"], ""), "dev-to-prod") {
		t.Errorf("cross-environment flows must stay denied by dev's policies")
	}
	for _, name := range []string{"ml-inference-to-grafana", "ml-inference-to-loki", "ml-inference-to-tempo-directly", "ml-inference-to-model-registry-other-port", "ml-inference-to-judge"} {
		if strings.Contains(text, `flow "`+name+`" (prod)`) {
			t.Errorf("%s must stay denied by the destination namespace's ingress policies", name)
		}
	}
}

// Two peers (namespaceSelector OR podSelector) instead of one (AND) admit
// every pod of the named namespace. The platform's own namespaces deny all
// egress by default, which would hide the mistake there, so it is planted
// on a peer in an unmanaged namespace (default), whose pods' egress is open.
func TestOrInsteadOfAndIsCaught(t *testing.T) {
	c, objs := rendered(t)
	for i, o := range objs {
		if o.GetKind() == "NetworkPolicy" && o.GetName() == "ml-inference-ingress" && o.GetNamespace() == "ml-inference-dev" {
			objs[i] = obj(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ml-inference-ingress, namespace: ml-inference-dev}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: ml-inference}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: default}}
        - podSelector: {matchLabels: {app.kubernetes.io/name: vmagent}}
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: envoy-gateway-system}}
          podSelector: {matchLabels: {app.kubernetes.io/component: proxy, gateway.envoyproxy.io/owning-gateway-name: platform}}
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: observability}}
          podSelector: {matchLabels: {app.kubernetes.io/name: vmagent}}
      ports: [{port: 8000, protocol: TCP}]
`)
		}
	}
	got := failures(t, c, realMatrix(t, c), mustCluster(t, objs))
	text := strings.Join(got["dev"], "\n")
	if !strings.Contains(text, `flow "other-namespace-to-ml-inference-health" (dev): default/{app=curl} -> ml-inference-dev/{app.kubernetes.io/name=ml-inference}:8000/TCP: expected deny, got allow`) {
		t.Errorf("the OR mistake was not reported:\n%s", text)
	}
	if len(got["staging"])+len(got["prod"]) != 0 {
		t.Errorf("only dev was changed: %v", got)
	}
}

// A policy naming the container port (http) is resolved from the rendered
// Deployment; one without policyTypes gets the API server's default.
func TestNamedPortsAndDefaultPolicyTypes(t *testing.T) {
	c, objs := rendered(t)
	var kept []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "NetworkPolicy" && o.GetName() == "ml-inference-ingress" && o.GetNamespace() == "ml-inference-staging" {
			continue
		}
		kept = append(kept, o)
	}
	kept = append(kept, obj(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: by-port-name, namespace: ml-inference-staging}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: ml-inference}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: envoy-gateway-system}}
          podSelector: {matchLabels: {app.kubernetes.io/component: proxy, gateway.envoyproxy.io/owning-gateway-name: platform}}
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: observability}}
          podSelector: {matchLabels: {app.kubernetes.io/name: vmagent}}
      ports: [{port: http}]
`))
	got := failures(t, c, realMatrix(t, c), mustCluster(t, kept))
	if len(got["staging"]) != 0 {
		t.Errorf("a policy by port name should behave like the real one:\n%s", strings.Join(got["staging"], "\n"))
	}
}

func TestPendingFlows(t *testing.T) {
	c, objs := rendered(t)
	m := realMatrix(t, c)
	// A flow between two namespaces no manifest here governs (team-sandbox
	// has no policies) can only be pending.
	unmanaged := netpol.Flow{
		Name:         "planted-unmanaged",
		From:         netpol.Peer{Namespace: "default", Labels: map[string]string{"app": "curl"}},
		To:           netpol.Peer{Namespace: "team-sandbox", Labels: map[string]string{"app.kubernetes.io/name": "notebook"}},
		Port:         5000,
		Protocol:     "TCP",
		Expect:       netpol.Deny,
		Environments: netpol.Environments{Names: []string{"dev"}},
		Pending:      "the team-sandbox namespace has no policies yet",
	}
	m.Flows = append(m.Flows, unmanaged)
	rep := mustCluster(t, objs).Check(m, "dev")
	if _, _, pending := rep.Counts(); pending != 1 {
		t.Errorf("%d pending flows in dev, want 1 (planted-unmanaged)", pending)
	}

	// Once its namespace is governed (here: a policy in team-sandbox), the
	// pending mark is an error.
	withPolicy := append(objs, obj(t, `{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: default-deny, namespace: team-sandbox}, spec: {podSelector: {}, policyTypes: [Ingress, Egress]}}`))
	got := failures(t, c, m, mustCluster(t, withPolicy))
	if text := strings.Join(got["dev"], "\n"); !strings.Contains(text, `flow "planted-unmanaged" (dev)`) || !strings.Contains(text, `remove "pending"`) {
		t.Errorf("a checkable pending flow was not reported:\n%s", text)
	}

	// A flow between unmanaged namespaces without a pending mark is an error.
	m.Flows[len(m.Flows)-1].Pending = ""
	got = failures(t, c, m, mustCluster(t, objs))
	if text := strings.Join(got["dev"], "\n"); !strings.Contains(text, "mark it pending") {
		t.Errorf("an uncheckable flow was not reported:\n%s", text)
	}
}

func TestLoadErrorsNameFileAndField(t *testing.T) {
	envs := []string{"dev", "staging", "prod"}
	good := `
  - name: a
    from: {namespace: x, labels: {a: b}}
    to: {namespace: y, labels: {c: d}}
    port: 80
    protocol: TCP
    expect: allow
    environments: all
`
	if _, err := netpol.Parse("m.yaml", []byte("flows:"+good), envs); err != nil {
		t.Fatalf("the good matrix fails: %v", err)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field":   {strings.Replace(good, "port:", "prot: 1\n    port:", 1), `unknown field "prot"`},
		"bad expect":      {strings.Replace(good, "expect: allow", "expect: maybe", 1), `flows[0] "a": field "expect" must be allow or deny`},
		"bad protocol":    {strings.Replace(good, "protocol: TCP", "protocol: tcp", 1), `field "protocol" must be one of`},
		"no protocol":     {strings.Replace(good, "protocol: TCP", "", 1), `field "protocol"`},
		"bad port":        {strings.Replace(good, "port: 80", "port: 70000", 1), `field "port" must be 1..65535`},
		"unknown env":     {strings.Replace(good, "environments: all", "environments: [qa]", 1), `field "environments" names "qa"`},
		"env string":      {strings.Replace(good, "environments: all", "environments: dev", 1), `environments must be "all" or a list`},
		"no environments": {strings.Replace(good, "environments: all", "", 1), `field "environments" is required`},
		"labels no ns":    {strings.Replace(good, "{namespace: y, labels: {c: d}}", "{ip: 1.2.3.4, labels: {c: d}}", 1), `field "to": labels need a namespace`},
		"bad ip":          {strings.Replace(good, "{namespace: y, labels: {c: d}}", "{ip: nope}", 1), `field "to": ip "nope" is not an IP address`},
		"empty peer":      {strings.Replace(good, "{namespace: x, labels: {a: b}}", "{}", 1), `field "from": needs a namespace`},
		"duplicate":       {good + strings.Replace(good, "port: 80", "port: 81", 1), `flows[1] "a": name is used by an earlier flow`},
		"no flows":        {"", `field "flows" must list at least one flow`},
	} {
		_, err := netpol.Parse("m.yaml", []byte("flows:"+tc.yaml), envs)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "m.yaml: ") {
			t.Errorf("%s: error %v, want m.yaml: ...%s", name, err, tc.want)
		}
	}
	if _, err := netpol.Load("does-not-exist.yaml", envs); err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestMalformedPolicyIsAnErrorNotAPanic(t *testing.T) {
	_, err := netpol.NewCluster([]*unstructured.Unstructured{obj(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: x}
spec: {podSelector: {}, policyTypez: [Ingress]}
`)})
	if err == nil || !strings.Contains(err.Error(), "x/bad") {
		t.Errorf("error %v, want one naming x/bad", err)
	}
}
