package abrollout

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/experiment"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testtools"
	"github.com/ml-platform/platform/internal/verify"
)

var repoRoot = filepath.Join("..", "..")

// tempRepo copies the repository's infrastructure and experiments into a
// new Git repository with one commit, and returns its root.
func tempRepo(t *testing.T) (string, Git) {
	t.Helper()
	root := t.TempDir()
	// tools/crds pins the upstream modules verify renders remote bases from;
	// the release workflow says which images this repository publishes.
	for _, dir := range []string{"infrastructure", experiment.Dir, filepath.Join("tools", "crds"), filepath.Join(".github", "workflows")} {
		if err := os.CopyFS(filepath.Join(root, dir), os.DirFS(filepath.Join(repoRoot, dir))); err != nil {
			t.Fatal(err)
		}
	}
	g := Git{Root: root, Env: []string{
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_CONFIG_NOSYSTEM=1", "HOME=" + root, "GIT_CONFIG_GLOBAL=/dev/null",
	}}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"-c", "commit.gpgsign=false", "add", "."},
		{"-c", "commit.gpgsign=false", "commit", "-q", "-m", "the repository"},
		{"config", "commit.gpgsign", "false"},
	} {
		if _, err := g.run(context.Background(), args...); err != nil {
			t.Fatal(err)
		}
	}
	return root, g
}

func load(t *testing.T, root string) (*gitops.Repository, *experiment.Spec) {
	t.Helper()
	repo, err := gitops.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := experiment.Find(filepath.Join(root, experiment.Dir), "v2-vs-v1")
	if err != nil {
		t.Fatal(err)
	}
	return repo, spec
}

// rendered returns the workload's ML_INFERENCE_TRAFFIC and experiment
// annotation as the overlay renders them.
func rendered(t *testing.T, repo *gitops.Repository, env string) (traffic, exp string) {
	t.Helper()
	e, err := repo.Environment(env)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := render.Build(e.Path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := workload(objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetName() == Workload && o.GetKind() == w.kind {
			ann, _, _ := unstructuredString(o.Object, "spec", "template", "metadata", "annotations", Annotation)
			return w.traffic, ann
		}
	}
	return w.traffic, ""
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

type recordingMover struct{ moves []string }

func (m *recordingMover) MoveAlias(ctx context.Context, version, alias, reason string) error {
	m.moves = append(m.moves, alias+"="+version)
	return nil
}

// TestStartPromoteAbort runs the three commands on a copy of the repository:
// each writes the overlay's traffic patch, the overlay renders with the
// split on the container, each commit is one commit on its own branch with
// only the files the command wrote, and verify's checks (all but the API
// server's) still pass on the result.
func TestStartPromoteAbort(t *testing.T) {
	ctx := context.Background()
	root, g := tempRepo(t)
	repo, spec := load(t, root)
	before, _ := os.ReadFile(filepath.Join(root, "infrastructure/overlays/prod/kustomization.yaml"))

	for _, env := range []string{"staging", "prod"} {
		c, err := Start(repo, spec, env)
		if err != nil {
			t.Fatal(err)
		}
		if tr, exp := rendered(t, repo, env); tr != "v1=50,v2=50" || exp != "v2-vs-v1" {
			t.Errorf("%s renders %s=%q and experiment %q", env, EnvVar, tr, exp)
		}
		if len(c.Files) != 2 || c.Envs[0].Namespace != "ml-inference-"+env {
			t.Errorf("start %s: %+v", env, c)
		}
		id, err := g.CommitOnBranch(ctx, c.Branch, c.Message, c.Files)
		if err != nil {
			t.Fatal(err)
		}
		subject, _ := g.run(ctx, "show", "-s", "--format=%s", id)
		files, _ := g.run(ctx, "show", "--name-only", "--format=", id)
		t.Logf("start %s: branch %s, commit %q: %s", env, c.Branch, subject, strings.ReplaceAll(files, "\n", ", "))
		want := "infrastructure/overlays/" + env + "/kustomization.yaml\ninfrastructure/overlays/" + env + "/patches/traffic.yaml"
		if subject != "abtest v2-vs-v1: start in "+env+" at v1=50,v2=50" || files != want {
			t.Errorf("commit %s: %q, files %q", id, subject, files)
		}
	}
	// The kustomization keeps every line it had, in order: the entry is
	// added, nothing else moves.
	after, _ := os.ReadFile(filepath.Join(root, "infrastructure/overlays/prod/kustomization.yaml"))
	if rest := withoutLines(string(after), string(before)); !strings.Contains(rest, "- path: patches/traffic.yaml") || strings.Count(rest, "\n") > 6 {
		t.Errorf("prod kustomization changed beyond the entry; added lines:\n%s", rest)
	}

	kyverno := testtools.Bin(t, "KYVERNO_BIN", "kyverno")
	sum, err := verify.Run(ctx, verify.Options{Root: root, SkipServer: true, KyvernoBin: kyverno}, io.Discard)
	if sum == nil {
		t.Fatalf("verify after start: %v", err)
	}
	// The copy's Git history is one commit, so verify's images check cannot
	// find the commits the overlays' image tags name; every other check must
	// pass.
	for _, f := range sum.Findings {
		if !strings.Contains(f.Message, "is no commit of this repository") {
			t.Errorf("verify after start: %s", f)
		}
	}

	// Another experiment cannot start where this one runs.
	other := *spec
	other.Name = "other"
	if _, err := Start(repo, &other, "staging"); err == nil || !strings.Contains(err.Error(), "v2-vs-v1 is running in staging") {
		t.Errorf("second experiment: %v", err)
	}

	mover := &recordingMover{}
	c, err := Promote(ctx, repo, spec, "v2", "verdict: treatment_wins", mover)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"staging", "prod"} {
		if tr, _ := rendered(t, repo, env); tr != "v2=100" {
			t.Errorf("after promote %s renders %s=%q", env, EnvVar, tr)
		}
	}
	if strings.Join(mover.moves, ",") != "staging=v2,production=v2" {
		t.Errorf("alias moves %v", mover.moves)
	}
	if _, err := g.CommitOnBranch(ctx, c.Branch, c.Message, c.Files); err != nil {
		t.Fatal(err)
	}
	log, _ := g.run(ctx, "log", "--format=%s", "main..HEAD")
	t.Logf("branch %s, commits since main:\n%s", c.Branch, log)
	if !strings.HasPrefix(log, "abtest v2-vs-v1: promote v2 to 100% in staging, prod") {
		t.Errorf("log %q", log)
	}
	if files, _ := g.run(ctx, "show", "--name-only", "--format=", "HEAD"); files != "infrastructure/overlays/prod/patches/traffic.yaml\ninfrastructure/overlays/staging/patches/traffic.yaml" {
		t.Errorf("promote commit touches %q", files)
	}

	c, err = Abort(repo, spec, "stopped by hand")
	if err != nil {
		t.Fatal(err)
	}
	if tr, _ := rendered(t, repo, "prod"); tr != "v1=100" || c.Branch != "abtest/v2-vs-v1/abort" {
		t.Errorf("after abort prod renders %q, branch %s", tr, c.Branch)
	}
	// Settled (one version at 100%), the environment takes a new experiment.
	if _, err := Start(repo, &other, "staging"); err != nil {
		t.Errorf("a new experiment after abort: %v", err)
	}
}

func withoutLines(after, before string) string {
	old := strings.Split(before, "\n")
	var added strings.Builder
	i := 0
	for _, l := range strings.Split(after, "\n") {
		if i < len(old) && l == old[i] {
			i++
			continue
		}
		added.WriteString(l + "\n")
	}
	if i != len(old) {
		return added.String() + "(lines of the original are missing)\n"
	}
	return added.String()
}

// TestErrors: a command that cannot do what it says writes nothing.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	root, g := tempRepo(t)
	repo, spec := load(t, root)
	if _, err := Start(repo, spec, "qa"); err == nil || !strings.Contains(err.Error(), `unknown environment "qa"`) {
		t.Errorf("unknown env: %v", err)
	}
	if _, err := Promote(ctx, repo, spec, "v2", "", nil); err == nil || !strings.Contains(err.Error(), "runs in no environment") {
		t.Errorf("promote before start: %v", err)
	}
	if _, err := Promote(ctx, repo, spec, "v9", "", nil); err == nil || !strings.Contains(err.Error(), "neither the control") {
		t.Errorf("promote v9: %v", err)
	}
	// Planted: the base moves the container the patch's test op names; the
	// overlay no longer renders, so the rewrite is refused and the files
	// are left as they were.
	if _, err := Start(repo, spec, "dev"); err != nil {
		t.Fatal(err)
	}
	patch := filepath.Join(root, "infrastructure/overlays/dev", PatchFile)
	was, _ := os.ReadFile(patch)
	base := filepath.Join(root, "infrastructure/base/ml-inference/rollout.yaml")
	data, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	sidecar := strings.Replace(string(data), "      containers:\n", "      containers:\n        - name: sidecar\n          image: busybox:1.37\n", 1)
	if sidecar == string(data) {
		t.Fatalf("%s has no containers: line to plant a sidecar before", base)
	}
	if err := os.WriteFile(base, []byte(sidecar), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Abort(repo, spec, ""); err == nil || !strings.Contains(err.Error(), "no longer renders") {
		t.Errorf("abort over a moved container: %v", err)
	}
	if now, _ := os.ReadFile(patch); string(now) != string(was) {
		t.Error("a refused change left the patch changed")
	}
	// Uncommitted changes in a file the command writes are not committed
	// for someone.
	if err := g.Clean(ctx, "infrastructure/overlays/dev"); err == nil {
		t.Error("Clean passes with uncommitted changes")
	}
	cmd := exec.Command("git", "status", "--porcelain")
	cmd.Dir = root
	if out, _ := cmd.Output(); len(out) == 0 {
		t.Error("expected changes in the working tree")
	}
}
