// Package charts renders the upstream Helm charts this repository installs
// through Argo CD (Kyverno, External Secrets, Envoy Gateway) the way Argo CD
// will: with the values of their Applications, from the chart sources in the
// Go modules pinned by tools/crds, with the Helm CLI pinned by tools/helm.
// test/charts checks the pods those charts create; test/scheduling applies
// them to a simulated cluster in sync-wave order.
//
// Chart dependencies fetched from remote repositories (Kyverno's CRD charts
// kyverno-api and openreports and its optional reports-server, External
// Secrets' optional bitwarden-sdk-server) are dropped from a copy of the
// chart: they hold CRDs or a component our values leave disabled, no pod of
// the release. Where the dropped dependencies held CRDs, Chart.CRDDirs names
// the same CRDs in the module's own tree.
package charts

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

// Chart is one upstream chart: its Application, the module and directory of
// its source, the remote dependencies to drop, and values to add for the
// render (never to change what the Application deploys).
type Chart struct {
	App, Module, Dir string
	DropDeps         []string
	ExtraValues      map[string]any
	// Version is what the chart directory's Chart.yaml must say: the
	// Application's targetRevision, unless the source tag lags the published
	// chart (External Secrets bumps the chart version after tagging).
	Version string
	// Template: the source holds values.tmpl.yaml, which the project's
	// release fills in (Envoy Gateway: the image; its Chart.yaml says
	// v0.0.0-latest); these are its substitutions.
	Template map[string]string
	// CRDDirs hold, in the module, the CRDs that the published chart
	// installs but its source tree lacks (Kyverno's dropped kyverno-api
	// chart; External Secrets' CRD templates, generated at release); Render
	// adds them with IncludeCRDs.
	CRDDirs []string
	// RuntimePods are pods the chart's controller creates at run time (no
	// render shows them).
	RuntimePods []RuntimePod
}

// RuntimePod is a pod a controller creates, by its labels, and the module
// file and lines that set those labels (tests check the source still says
// so).
type RuntimePod struct {
	Name   string
	Labels labels.Set
	Source string
	Says   []string
}

// All are the charts the Applications in infrastructure/argocd/apps install.
var All = []Chart{
	{
		App: "kyverno", Module: "github.com/kyverno/kyverno", Dir: "charts/kyverno",
		DropDeps: []string{"kyverno-api", "openreports", "reports-server"},
		// The CRDs are not pods; their subcharts are the dropped ones.
		ExtraValues: map[string]any{"crds": map[string]any{"install": false}},
		CRDDirs:     []string{"config/crds/kyverno", "config/crds/policies.kyverno.io", "config/crds/policyreport", "config/crds/reports"},
	},
	{
		App: "external-secrets", Module: "github.com/external-secrets/external-secrets", Dir: "deploy/charts/external-secrets",
		DropDeps: []string{"bitwarden-sdk-server"},
		Version:  "0.16.1",
		// The published chart's templates/crds are generated from these at
		// release; the source tree has only a README there.
		CRDDirs: []string{"config/crds/bases"},
	},
	{
		App: "envoy-gateway", Module: "github.com/envoyproxy/gateway", Dir: "charts/gateway-helm",
		Version: "v0.0.0-latest",
		Template: map[string]string{
			"${GatewayImage}":           "docker.io/envoyproxy/gateway:v1.9.1",
			"${GatewayImagePullPolicy}": "IfNotPresent",
		},
		RuntimePods: []RuntimePod{{
			Name: "the Envoy proxy of Gateway envoy-gateway-system/platform",
			Labels: labels.Set{
				"app.kubernetes.io/name": "envoy", "app.kubernetes.io/component": "proxy", "app.kubernetes.io/managed-by": "envoy-gateway",
				"gateway.envoyproxy.io/owning-gateway-name": "platform", "gateway.envoyproxy.io/owning-gateway-namespace": "envoy-gateway-system",
			},
			Source: "internal/infrastructure/kubernetes/proxy/resource.go",
			Says:   []string{`"app.kubernetes.io/name":       "envoy"`, `"app.kubernetes.io/component":  "proxy"`},
		}},
	},
}

// ByApp returns the chart of the named Application.
func ByApp(app string) (Chart, bool) {
	i := slices.IndexFunc(All, func(c Chart) bool { return c.App == app })
	if i < 0 {
		return Chart{}, false
	}
	return All[i], true
}

// Application is what a chart's Application says.
type Application struct {
	Revision, Release, Namespace string
	Values                       map[string]any
}

// ReadApplication reads the Application's chart pin, release, namespace and
// values from infrastructure/argocd/apps/<name>.yaml.
func ReadApplication(repo *gitops.Repository, name string) (Application, error) {
	file := filepath.Join(repo.Root, "infrastructure", "argocd", "apps", name+".yaml")
	objs, err := gitops.ReadManifests(file)
	if err != nil || len(objs) != 1 {
		return Application{}, fmt.Errorf("application %s: %v (%d objects)", file, err, len(objs))
	}
	return FromApplication(objs[0].Unstructured), nil
}

// FromApplication reads a chart source from an Application object.
func FromApplication(app *unstructured.Unstructured) Application {
	var a Application
	o := app.Object
	a.Revision, _, _ = unstructured.NestedString(o, "spec", "source", "targetRevision")
	a.Release, _, _ = unstructured.NestedString(o, "spec", "source", "helm", "releaseName")
	a.Namespace, _, _ = unstructured.NestedString(o, "spec", "destination", "namespace")
	a.Values, _, _ = unstructured.NestedMap(o, "spec", "source", "helm", "valuesObject")
	if a.Values == nil {
		a.Values = map[string]any{}
	}
	return a
}

// Options change a render.
type Options struct {
	// IncludeCRDs adds the chart's crds/ directories (as Argo CD does) and
	// the CRDs of the dropped dependencies (CRDDirs).
	IncludeCRDs bool
}

// Render runs helm template for c with the Application's values and returns
// the objects, with the release namespace set on the namespaced ones Helm
// leaves without one.
func Render(repo *gitops.Repository, helm string, c Chart, app Application, o Options) ([]render.Object, error) {
	src, err := repo.ModuleDir(c.Module)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "chart-"+c.App+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	dir, meta, err := copyChart(filepath.Join(src, c.Dir), work, c.DropDeps)
	if err != nil {
		return nil, err
	}
	want := c.Version
	if want == "" {
		want = app.Revision
	}
	if got := meta["version"]; got != want {
		return nil, fmt.Errorf("%s: chart source says version %v; want %s (the Application pins %s)", c.App, got, want, app.Revision)
	}
	if c.Template != nil {
		if err := fillTemplate(dir, c.Template); err != nil {
			return nil, fmt.Errorf("%s: %w", c.App, err)
		}
	}
	values := map[string]any{}
	for k, v := range app.Values {
		values[k] = v
	}
	for k, v := range c.ExtraValues {
		values[k] = v
	}
	vals, err := yaml.Marshal(values)
	if err != nil {
		return nil, err
	}
	valuesFile := filepath.Join(work, "values.yaml")
	if err := os.WriteFile(valuesFile, vals, 0o644); err != nil {
		return nil, err
	}
	kube, err := KubeVersion(repo.Root)
	if err != nil {
		return nil, err
	}
	args := []string{"template", app.Release, dir, "--namespace", app.Namespace, "--values", valuesFile, "--kube-version", kube}
	if o.IncludeCRDs {
		args = append(args, "--include-crds")
	}
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template %s: %v\n%s", c.App, err, stderr.String())
	}
	file := filepath.Join(work, "rendered.yaml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		return nil, err
	}
	objs, err := gitops.ReadManifests(file)
	if err != nil {
		return nil, err
	}
	if o.IncludeCRDs {
		for _, d := range c.CRDDirs {
			files, _ := filepath.Glob(filepath.Join(src, d, "*.yaml"))
			for _, f := range files {
				crds, err := gitops.ReadManifests(f)
				if err != nil {
					return nil, err
				}
				for _, crd := range crds {
					if crd.GetKind() == "CustomResourceDefinition" {
						objs = append(objs, crd)
					}
				}
			}
		}
	}
	for _, obj := range objs {
		obj.EntryPoint = c.App
		if obj.GetNamespace() == "" && obj.GetKind() != "Namespace" && !strings.HasPrefix(obj.GetKind(), "Cluster") &&
			obj.GetKind() != "CustomResourceDefinition" && !strings.HasSuffix(obj.GetKind(), "WebhookConfiguration") &&
			!clusterScoped[obj.GetKind()] {
			obj.SetNamespace(app.Namespace)
		}
	}
	return objs, nil
}

// clusterScoped are the other cluster-scoped kinds the charts render.
var clusterScoped = map[string]bool{
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"PriorityClass": true, "APIService": true, "StorageClass": true,
}

// copyChart copies dir into work without the dropped dependencies in
// Chart.yaml (Helm refuses a chart whose listed dependencies are not in
// charts/).
func copyChart(dir, work string, drop []string) (string, map[string]any, error) {
	dst := filepath.Join(work, filepath.Base(dir))
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		return "", nil, err
	}
	// Module cache files are read-only; the copy must be writable.
	filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			mode := os.FileMode(0o644)
			if d.IsDir() {
				mode = 0o755
			}
			os.Chmod(p, mode)
		}
		return nil
	})
	data, err := os.ReadFile(filepath.Join(dst, "Chart.yaml"))
	if err != nil {
		return "", nil, err
	}
	var meta map[string]any
	if err := yaml.Unmarshal(data, &meta); err != nil {
		return "", nil, fmt.Errorf("%s/Chart.yaml: %w", dir, err)
	}
	deps, _ := meta["dependencies"].([]any)
	var kept []any
	for _, d := range deps {
		if m, ok := d.(map[string]any); ok && !slices.Contains(drop, fmt.Sprint(m["name"])) {
			kept = append(kept, d)
		}
	}
	edited := map[string]any{}
	for k, v := range meta {
		edited[k] = v
	}
	edited["dependencies"] = kept
	out, _ := yaml.Marshal(edited)
	if err := os.WriteFile(filepath.Join(dst, "Chart.yaml"), out, 0o644); err != nil {
		return "", nil, err
	}
	os.Remove(filepath.Join(dst, "Chart.lock"))
	return dst, meta, nil
}

// fillTemplate writes values.yaml from values.tmpl.yaml, as the chart's
// release process does.
func fillTemplate(dir string, subst map[string]string) error {
	data, err := os.ReadFile(filepath.Join(dir, "values.tmpl.yaml"))
	if err != nil {
		return err
	}
	text := string(data)
	for k, v := range subst {
		text = strings.ReplaceAll(text, k, v)
	}
	if strings.Contains(text, "${") {
		return fmt.Errorf("values.tmpl.yaml still has a placeholder after substitution")
	}
	return os.WriteFile(filepath.Join(dir, "values.yaml"), []byte(text), 0o644)
}

// KubeVersion is the Kubernetes release pinned in tools/kubernetes.
func KubeVersion(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "tools", "kubernetes", "go.mod"))
	if err != nil {
		return "", err
	}
	if m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?k8s\.io/kubernetes (v\S+)`).FindSubmatch(data); m != nil {
		return string(m[1]), nil
	}
	return "", fmt.Errorf("tools/kubernetes/go.mod does not require k8s.io/kubernetes")
}
