// Package abrollout changes an environment's traffic split through Git, the
// only way anything reaches a cluster here: `platformctl abtest start`
// writes an experiment's split into the environment's overlay, `promote`
// the winner at 100%, `abort` the control at 100%. Each is one small patch
// file the overlay lists, patches/traffic.yaml, setting ML_INFERENCE_TRAFFIC
// (ml-inference's --traffic) on the ml-inference container and naming the
// experiment in a pod-template annotation, and each change can be one commit
// on a new branch, ready for a pull request.
//
// The patch is a JSON 6902 patch written against the rendered overlay: it
// works whatever the workload's kind (a Deployment today, an Argo Rollouts
// Rollout once canaries deliver it), and its test op fails the render if the
// container it names moves, instead of patching another one.
package abrollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/router"
)

const (
	// PatchFile is the traffic patch, relative to an overlay.
	PatchFile = "patches/traffic.yaml"
	// Workload and Container name what the patch changes.
	Workload  = "ml-inference"
	Container = "ml-inference"
	// EnvVar is --traffic's environment variable.
	EnvVar = "ML_INFERENCE_TRAFFIC"
	// Annotation names the experiment on the pod template.
	Annotation = "ml-platform.io/experiment"
)

// State is an environment's traffic patch as Git has it.
type State struct {
	Env        string
	Dir        string // the overlay
	Namespace  string // where the overlay deploys the workload
	Experiment string
	Traffic    string // ML_INFERENCE_TRAFFIC
}

// op is one JSON 6902 operation.
type op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// ReadState returns the traffic patch of the environment's overlay, nil
// when it has none.
func ReadState(env gitops.Environment) (*State, error) {
	path := filepath.Join(env.Path, PatchFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ops []op
	if err := yaml.UnmarshalStrict(data, &ops); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	s := &State{Env: env.Name, Dir: env.Path}
	for _, o := range ops {
		switch {
		case strings.HasSuffix(o.Path, "/annotations/"+escape(Annotation)):
			s.Experiment, _ = o.Value.(string)
		case strings.Contains(o.Path, "/env/"):
			switch v := o.Value.(type) {
			case string:
				s.Traffic = v
			case map[string]any:
				s.Traffic, _ = v["value"].(string)
			}
		}
	}
	if s.Experiment == "" || s.Traffic == "" {
		return nil, fmt.Errorf("%s: not a traffic patch written by platformctl abtest (no experiment annotation or %s)", path, EnvVar)
	}
	return s, nil
}

// escape is a JSON pointer token (RFC 6901).
func escape(s string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(s) }

// SetTraffic writes the overlay's traffic patch for experiment with the
// given split (ml-inference's --traffic syntax) and lists it in the
// overlay's kustomization. It returns the files it changed (relative to
// the repository root) and the workload's namespace. The result renders, or
// nothing is written.
func SetTraffic(repo *gitops.Repository, envName, experiment, traffic string) ([]string, string, error) {
	if _, err := router.ParseWeights(traffic); err != nil {
		return nil, "", err
	}
	env, err := repo.Environment(envName)
	if err != nil {
		return nil, "", err
	}
	patchPath := filepath.Join(env.Path, PatchFile)
	kustPath := filepath.Join(env.Path, "kustomization.yaml")
	oldPatch, patchErr := os.ReadFile(patchPath)
	oldKust, err := os.ReadFile(kustPath)
	if err != nil {
		return nil, "", fmt.Errorf("environment %s: %w", envName, err)
	}
	listed, err := listsPatch(oldKust)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", repo.Rel(kustPath), err)
	}

	var ops []op
	var kind string
	if patchErr == nil && listed {
		// Rewrite the values of the patch already there: the overlay as it
		// renders now includes it.
		if err := yaml.UnmarshalStrict(oldPatch, &ops); err != nil {
			return nil, "", fmt.Errorf("%s: %v", repo.Rel(patchPath), err)
		}
		for i, o := range ops {
			switch {
			case strings.HasSuffix(o.Path, "/annotations/"+escape(Annotation)):
				ops[i].Value = experiment
			case strings.HasSuffix(o.Path, "/env/-"):
				ops[i].Value = map[string]any{"name": EnvVar, "value": traffic}
			case strings.Contains(o.Path, "/env/"):
				ops[i].Value = traffic
			}
		}
		if kind, err = targetKind(oldKust); err != nil {
			return nil, "", fmt.Errorf("%s: %w", repo.Rel(kustPath), err)
		}
	} else {
		objs, err := render.Build(env.Path)
		if err != nil {
			return nil, "", err
		}
		w, err := workload(objs)
		if err != nil {
			return nil, "", fmt.Errorf("environment %s: %w", envName, err)
		}
		kind = w.kind
		ops = w.ops(experiment, traffic)
	}

	patch := patchHeader
	body, err := yaml.Marshal(ops)
	if err != nil {
		return nil, "", err
	}
	patch += string(body)
	newKust := oldKust
	if !listed {
		newKust = appendPatchEntry(oldKust, kind)
	}
	changed := []string{repo.Rel(patchPath)}
	if err := os.MkdirAll(filepath.Dir(patchPath), 0o755); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(patchPath, []byte(patch), 0o644); err != nil {
		return nil, "", err
	}
	if !bytes.Equal(newKust, oldKust) {
		changed = append(changed, repo.Rel(kustPath))
		if err := os.WriteFile(kustPath, newKust, 0o644); err != nil {
			return nil, "", err
		}
	}
	// Prove it: the overlay renders, with the split on the container.
	restore := func() {
		if patchErr == nil {
			os.WriteFile(patchPath, oldPatch, 0o644)
		} else {
			os.Remove(patchPath)
		}
		os.WriteFile(kustPath, oldKust, 0o644)
	}
	objs, err := render.Build(env.Path)
	if err != nil {
		restore()
		return nil, "", fmt.Errorf("the overlay no longer renders with the traffic patch (nothing written): %w", err)
	}
	w, err := workload(objs)
	if err == nil && w.traffic != traffic {
		err = fmt.Errorf("the rendered %s has %s=%q, want %q", w.kind, EnvVar, w.traffic, traffic)
	}
	if err != nil {
		restore()
		return nil, "", fmt.Errorf("environment %s (nothing written): %w", envName, err)
	}
	return changed, w.namespace, nil
}

const patchHeader = `# Written by platformctl abtest (start, promote, abort): ml-inference's
# traffic split in this environment (ML_INFERENCE_TRAFFIC, its --traffic) and
# the experiment that set it. Change it with those commands; see
# docs/runbooks/ab-experiment.md.
`

// found is the workload as rendered.
type found struct {
	kind, namespace string
	container       int
	env             int // index of EnvVar in the container's env, -1: absent
	hasEnv          bool
	traffic         string
	modelSource     string // ML_INFERENCE_MODEL_SOURCE ("": the server's default, dir)
	modelURI        string // ML_INFERENCE_MODEL_URI
}

func workload(objs []render.Object) (found, error) {
	for _, o := range objs {
		if o.GetName() != Workload || (o.GetKind() != "Deployment" && o.GetKind() != "Rollout") {
			continue
		}
		f := found{kind: o.GetKind(), namespace: o.GetNamespace(), env: -1}
		spec, _ := o.Object["spec"].(map[string]any)
		tmpl, _ := spec["template"].(map[string]any)
		pod, _ := tmpl["spec"].(map[string]any)
		containers, _ := pod["containers"].([]any)
		f.container = -1
		for i, c := range containers {
			cm, _ := c.(map[string]any)
			if cm["name"] != Container {
				continue
			}
			f.container = i
			envs, ok := cm["env"].([]any)
			f.hasEnv = ok
			for j, e := range envs {
				em, _ := e.(map[string]any)
				switch em["name"] {
				case EnvVar:
					f.env = j
					f.traffic, _ = em["value"].(string)
				case "ML_INFERENCE_MODEL_SOURCE":
					f.modelSource, _ = em["value"].(string)
				case "ML_INFERENCE_MODEL_URI":
					f.modelURI, _ = em["value"].(string)
				}
			}
		}
		if f.container < 0 {
			return f, fmt.Errorf("%s has no container %q", render.Ref(o.Unstructured), Container)
		}
		if meta, _ := tmpl["metadata"].(map[string]any); meta["annotations"] == nil {
			return f, fmt.Errorf("%s's pod template has no annotations to add %s to", render.Ref(o.Unstructured), Annotation)
		}
		return f, nil
	}
	return found{}, fmt.Errorf("no Deployment or Rollout %q is rendered", Workload)
}

func (f found) ops(experiment, traffic string) []op {
	c := fmt.Sprintf("/spec/template/spec/containers/%d", f.container)
	ops := []op{{Op: "test", Path: c + "/name", Value: Container}}
	switch {
	case f.env >= 0:
		ops = append(ops,
			op{Op: "test", Path: fmt.Sprintf("%s/env/%d/name", c, f.env), Value: EnvVar},
			op{Op: "replace", Path: fmt.Sprintf("%s/env/%d/value", c, f.env), Value: traffic})
	case f.hasEnv:
		ops = append(ops, op{Op: "add", Path: c + "/env/-", Value: map[string]any{"name": EnvVar, "value": traffic}})
	default:
		ops = append(ops, op{Op: "add", Path: c + "/env", Value: []any{map[string]any{"name": EnvVar, "value": traffic}}})
	}
	return append(ops, op{Op: "add", Path: "/spec/template/metadata/annotations/" + escape(Annotation), Value: experiment})
}

type patchEntry struct {
	Path   string `json:"path"`
	Target struct {
		Kind string `json:"kind"`
	} `json:"target"`
}

type kustomization struct {
	Patches []patchEntry `json:"patches"`
}

func listsPatch(data []byte) (bool, error) {
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return false, err
	}
	return slices.ContainsFunc(k.Patches, func(p patchEntry) bool { return p.Path == PatchFile }), nil
}

func targetKind(data []byte) (string, error) {
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return "", err
	}
	for _, p := range k.Patches {
		if p.Path == PatchFile {
			return p.Target.Kind, nil
		}
	}
	return "", fmt.Errorf("does not list %s", PatchFile)
}

// appendPatchEntry adds the traffic patch to the kustomization's patches
// (created at the end if there are none), as text: the file keeps its
// comments and layout, and the diff is the entry alone.
func appendPatchEntry(data []byte, kind string) []byte {
	entry := func(indent string) string {
		return indent + "# The traffic split (platformctl abtest start/promote/abort).\n" +
			indent + "- path: " + PatchFile + "\n" +
			indent + "  target:\n" +
			indent + "    kind: " + kind + "\n" +
			indent + "    name: " + Workload + "\n"
	}
	lines := strings.SplitAfter(string(data), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "patches:") {
			start = i
		}
	}
	text := string(data)
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	if start < 0 {
		return []byte(text + "\npatches:\n" + entry("  "))
	}
	// The block runs to the next top-level key; the entry goes after its
	// last item line, before trailing blank lines and comments.
	end := len(lines)
	indent := "" // of the block's first item; every item has it
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimSpace(l)
		if trimmed != "" && !strings.HasPrefix(trimmed, "#") && l[0] != ' ' && l[0] != '-' {
			end = i
			break
		}
		if strings.HasPrefix(trimmed, "- ") && indent == "" {
			indent = l[:len(l)-len(strings.TrimLeft(l, " "))]
		}
	}
	last := end
	for last > start+1 && (strings.TrimSpace(lines[last-1]) == "" || strings.HasPrefix(strings.TrimSpace(lines[last-1]), "#")) {
		last--
	}
	var b strings.Builder
	for _, l := range lines[:last] {
		b.WriteString(l)
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	b.WriteString(entry(indent))
	for _, l := range lines[last:] {
		b.WriteString(l)
	}
	return []byte(b.String())
}

// Running lists the environments whose traffic patch names experiment.
func Running(repo *gitops.Repository, experiment string) ([]State, error) {
	var out []State
	for _, e := range repo.Environments {
		s, err := ReadState(e)
		if err != nil {
			return nil, err
		}
		if s != nil && s.Experiment == experiment {
			out = append(out, *s)
		}
	}
	return out, nil
}

// Git makes the commits: the git command in the repository, so the
// operator's identity, signing and hooks apply.
type Git struct {
	Root string
	Env  []string // added to the environment (tests set an identity)
}

func (g Git) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = g.Root
	cmd.Env = append(os.Environ(), g.Env...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Clean fails when any of files has changes Git does not have: a commit of
// them would carry someone's unfinished work.
func (g Git) Clean(ctx context.Context, files ...string) error {
	out, err := g.run(ctx, append([]string{"status", "--porcelain", "--"}, files...)...)
	if err != nil {
		return err
	}
	if out != "" {
		return fmt.Errorf("uncommitted changes in files this command writes; commit or stash them first:\n%s", out)
	}
	return nil
}

// CommitOnBranch creates branch from the current HEAD, switches to it and
// commits files with message. It returns the commit id.
func (g Git) CommitOnBranch(ctx context.Context, branch, message string, files []string) (string, error) {
	if _, err := g.run(ctx, "check-ref-format", "--branch", branch); err != nil {
		return "", err
	}
	if _, err := g.run(ctx, "switch", "-c", branch); err != nil {
		return "", err
	}
	if _, err := g.run(ctx, append([]string{"add", "--"}, files...)...); err != nil {
		return "", err
	}
	// Only these paths: anything else the operator staged stays staged.
	if _, err := g.run(ctx, append([]string{"commit", "-q", "-m", message, "--"}, files...)...); err != nil {
		return "", err
	}
	return g.run(ctx, "rev-parse", "HEAD")
}
