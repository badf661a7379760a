package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ml-platform/platform/internal/render"
)

// Finding is one problem: where it is (entry point or file), which object,
// and what is wrong.
type Finding struct {
	Where   string
	Object  string
	Message string
}

func (f Finding) String() string {
	if f.Object == "" {
		return f.Where + ": " + f.Message
	}
	return f.Where + ": " + f.Object + ": " + f.Message
}

// Rendered is every object verify looks at, by entry point (or file).
type Rendered struct {
	Order   []string // entry points and files, in config order
	Objects map[string][]render.Object
	Env     map[string]Environment // entry point -> environment, for overlays
}

// Render builds every environment and entry point and parses every file.
// Failures are findings, so one broken overlay does not hide the others.
func Render(c *Config) (*Rendered, []Finding) {
	r := &Rendered{Objects: map[string][]render.Object{}, Env: map[string]Environment{}}
	var findings []Finding
	add := func(where string, objs []render.Object, err error) {
		if err != nil {
			findings = append(findings, Finding{Where: where, Message: err.Error()})
			return
		}
		r.Order = append(r.Order, where)
		r.Objects[where] = objs
	}
	for _, e := range c.Environments {
		objs, err := render.Build(e.Path)
		add(e.Path, objs, err)
		r.Env[e.Path] = e
	}
	for _, p := range c.EntryPoints {
		objs, err := render.Build(p)
		add(p, objs, err)
	}
	for _, p := range c.Files {
		objs, err := ReadManifests(p)
		add(p, objs, err)
	}
	return r, findings
}

// ReadManifests parses a multi-document YAML file. Errors name the file and,
// where the parser knows it, the line.
func ReadManifests(path string) ([]render.Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []render.Object
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("%s: a document has no apiVersion or kind", path)
		}
		out = append(out, render.Object{Unstructured: u, EntryPoint: path})
	}
}

// Static runs the structural checks on everything rendered. root is the
// repository root, for Application paths and the secret scan.
func Static(c *Config, root string, r *Rendered) []Finding {
	var fs []Finding
	for _, where := range r.Order {
		objs := r.Objects[where]
		env, isEnv := r.Env[where]
		for _, o := range objs {
			report := func(format string, args ...any) {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(format, args...)})
			}
			if isEnv {
				checkLabels(o, c.RequiredLabels, env.Name, report)
				checkReplicas(o, env, report)
			}
			if spec, ok := podSpec(o.Unstructured); ok {
				checkPodSpec(spec, report)
			}
			if o.GetKind() == "Application" && strings.HasPrefix(o.GetAPIVersion(), "argoproj.io/") {
				checkApplicationPaths(o, c.RepoURL, root, report)
				if !slices.Contains(c.Files, where) {
					checkForkable(o, c.RepoURL, report)
				}
			}
			if o.GetKind() == "AppProject" && strings.HasPrefix(o.GetAPIVersion(), "argoproj.io/") {
				if repos, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "sourceRepos"); len(repos) == 0 || repos[0] != c.RepoURL {
					report("spec.sourceRepos[0] must be %s: platformctl bootstrap replaces it with a fork's URL", c.RepoURL)
				}
			}
		}
		if isEnv {
			fs = append(fs, missingWorkloads(where, env, objs)...)
		}
	}
	fs = append(fs, PodSecurity(c, r)...)    // Pod Security Standards, podsecurity.go
	fs = append(fs, Projects(c, root, r)...) // Applications vs their AppProjects, projects.go
	return append(fs, SecretsInGit(root)...)
}

func checkLabels(o render.Object, required []string, env string, report func(string, ...any)) {
	labels := o.GetLabels()
	for _, l := range required {
		v, ok := labels[l]
		switch {
		case !ok || v == "":
			report("label %q is missing", l)
		case l == "env" && v != env:
			report("label env=%q in environment %q", v, env)
		}
	}
}

var workloadKinds = []string{"Deployment", "StatefulSet", "Rollout"}

func checkReplicas(o render.Object, env Environment, report func(string, ...any)) {
	kind := o.GetKind()
	if slices.Contains(workloadKinds, kind) {
		want, ok := env.Replicas[o.GetName()]
		if !ok {
			return
		}
		got, found, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
		if !found {
			got = 1
		}
		if got != want {
			report("spec.replicas is %d; environment %s wants %d", got, env.Name, want)
		}
	}
	if kind == "HorizontalPodAutoscaler" {
		target, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "name")
		want, ok := env.Replicas[target]
		if !ok {
			return
		}
		minR, found, _ := unstructured.NestedInt64(o.Object, "spec", "minReplicas")
		if !found {
			minR = 1
		}
		maxR, _, _ := unstructured.NestedInt64(o.Object, "spec", "maxReplicas")
		if minR != want {
			report("spec.minReplicas is %d; environment %s runs %d replicas, and the HPA would scale it to %d", minR, env.Name, want, max(minR, 1))
		}
		if maxR < minR {
			report("spec.maxReplicas %d is below spec.minReplicas %d", maxR, minR)
		}
	}
}

func missingWorkloads(where string, env Environment, objs []render.Object) []Finding {
	var fs []Finding
	for name := range env.Replicas {
		found := slices.ContainsFunc(objs, func(o render.Object) bool {
			return o.GetName() == name && slices.Contains(workloadKinds, o.GetKind())
		})
		if !found {
			fs = append(fs, Finding{Where: where, Message: fmt.Sprintf("environment %s expects workload %q, which is not rendered", env.Name, name)})
		}
	}
	return fs
}

// podSpec finds the pod spec of a workload.
func podSpec(u *unstructured.Unstructured) (map[string]any, bool) {
	var path []string
	switch u.GetKind() {
	case "Pod":
		path = []string{"spec"}
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Rollout":
		path = []string{"spec", "template", "spec"}
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	default:
		return nil, false
	}
	spec, found, err := unstructured.NestedMap(u.Object, path...)
	return spec, found && err == nil
}

// checkPodSpec requires, for every container: a pinned image; CPU and memory
// requests and a memory limit (no CPU limit is required: CFS throttling hurts
// a latency-bound server more than it protects neighbours); liveness and
// readiness probes; and a restricted security context (non-root, no
// privilege escalation, read-only root filesystem).
func checkPodSpec(spec map[string]any, report func(string, ...any)) {
	podNonRoot, _, _ := unstructured.NestedBool(spec, "securityContext", "runAsNonRoot")
	for _, field := range []string{"initContainers", "containers"} {
		list, _, _ := unstructured.NestedSlice(spec, field)
		for _, item := range list {
			ctr, _ := item.(map[string]any)
			name, _, _ := unstructured.NestedString(ctr, "name")
			at := func(format string, args ...any) {
				report("%s %q: %s", strings.TrimSuffix(field, "s"), name, fmt.Sprintf(format, args...))
			}
			image, _, _ := unstructured.NestedString(ctr, "image")
			if msg := imageProblem(image); msg != "" {
				at("%s", msg)
			}
			for _, res := range []string{"requests.cpu", "requests.memory", "limits.memory"} {
				k, v, _ := strings.Cut(res, ".")
				if s, _, _ := unstructured.NestedFieldNoCopy(ctr, "resources", k, v); s == nil {
					at("resources.%s is not set", res)
				}
			}
			if field == "containers" {
				for _, probe := range []string{"livenessProbe", "readinessProbe"} {
					if p, _, _ := unstructured.NestedMap(ctr, probe); len(p) == 0 {
						at("%s is not set", probe)
					}
				}
			}
			nonRoot, set, _ := unstructured.NestedBool(ctr, "securityContext", "runAsNonRoot")
			if uid, found, _ := unstructured.NestedInt64(ctr, "securityContext", "runAsUser"); found && uid == 0 {
				at("securityContext.runAsUser is 0 (root)")
			}
			if !(nonRoot || (!set && podNonRoot)) {
				at("runAsNonRoot is not true (pod or container securityContext)")
			}
			if ape, found, _ := unstructured.NestedBool(ctr, "securityContext", "allowPrivilegeEscalation"); !found || ape {
				at("securityContext.allowPrivilegeEscalation must be false")
			}
			if ro, _, _ := unstructured.NestedBool(ctr, "securityContext", "readOnlyRootFilesystem"); !ro {
				at("securityContext.readOnlyRootFilesystem must be true")
			}
		}
	}
}

// imageProblem says what is wrong with an image reference, or "".
func imageProblem(image string) string {
	if image == "" {
		return "image is not set"
	}
	if strings.Contains(image, "@sha256:") {
		return ""
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case !ok || tag == "":
		return fmt.Sprintf("image %q has no tag; pin an exact version", image)
	case tag == "latest":
		return fmt.Sprintf("image %q uses :latest; pin an exact version", image)
	}
	return ""
}

// checkApplicationPaths: every source of an Application that points at this
// repository names a path that exists and renders.
func checkApplicationPaths(o render.Object, repoURL, root string, report func(string, ...any)) {
	var sources []map[string]any
	if s, found, _ := unstructured.NestedMap(o.Object, "spec", "source"); found {
		sources = append(sources, s)
	}
	if list, found, _ := unstructured.NestedSlice(o.Object, "spec", "sources"); found {
		for _, s := range list {
			if m, ok := s.(map[string]any); ok {
				sources = append(sources, m)
			}
		}
	}
	for _, s := range sources {
		url, _, _ := unstructured.NestedString(s, "repoURL")
		path, _, _ := unstructured.NestedString(s, "path")
		if url != repoURL || path == "" {
			continue
		}
		dir := filepath.Join(root, path)
		if _, err := os.Stat(dir); err != nil {
			report("spec.source.path %q does not exist in this repository", path)
			continue
		}
		if hasKustomization(dir) {
			if _, err := render.Build(dir); err != nil {
				report("spec.source.path %q does not render: %v", path, err)
			}
		}
	}
}

// ForkLabel marks Applications whose source is this repository; the root
// Application that platformctl bootstrap writes re-points them at a fork.
const ForkLabel = "ml-platform.io/source"

// checkForkable: an Application that syncs from this repository carries the
// fork label, or a fork's cluster would keep syncing from the original.
func checkForkable(o render.Object, repoURL string, report func(string, ...any)) {
	url, _, _ := unstructured.NestedString(o.Object, "spec", "source", "repoURL")
	if url == repoURL && o.GetLabels()[ForkLabel] != "this-repo" {
		report("label %s=this-repo is missing: bootstrap could not point this Application at a fork", ForkLabel)
	}
}

func hasKustomization(dir string) bool {
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// SecretsInGit finds Secret objects with data in any YAML file tracked by Git
// (every YAML file under root when it is not a Git checkout). Secrets come
// from External Secrets, never from the repository.
func SecretsInGit(root string) []Finding {
	files, err := yamlFiles(root)
	if err != nil {
		return []Finding{{Where: root, Message: "list YAML files: " + err.Error()}}
	}
	var fs []Finding
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil || !bytes.Contains(data, []byte("Secret")) {
			continue
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				break // not Kubernetes YAML, or done; syntax is render's concern
			}
			u := unstructured.Unstructured{Object: m}
			if u.GetKind() != "Secret" {
				continue
			}
			d, _, _ := unstructured.NestedMap(m, "data")
			sd, _, _ := unstructured.NestedMap(m, "stringData")
			if len(d)+len(sd) > 0 {
				fs = append(fs, Finding{Where: f, Object: render.Ref(&u), Message: "a Secret with data is committed to Git; use an ExternalSecret"})
			}
		}
	}
	return fs
}

func yamlFiles(root string) ([]string, error) {
	if out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.yaml", "*.yml").Output(); err == nil {
		var files []string
		for f := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
		return files, nil
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(p); ext == ".yaml" || ext == ".yml" {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}
