// Package workflows lints the repository's GitHub Actions workflows
// (.github/workflows) with the pinned actionlint (tools/actionlint), so a
// broken workflow fails `make test` instead of the first run on GitHub, and
// checks the release pipeline's contract with the rest of the repository.
package workflows

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/testtools"
)

const repoRoot = "../.."

func actionlint(t *testing.T, files ...string) (string, error) {
	t.Helper()
	bin := testtools.Bin(t, "ACTIONLINT_BIN", "actionlint")
	// -shellcheck= : the run: scripts are checked by actionlint's own
	// rules; shellcheck is not a pinned tool here.
	cmd := exec.Command(bin, append([]string{"-no-color", "-oneline", "-shellcheck=", "-pyflakes="}, files...)...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestWorkflowsPassActionlint(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, ".github", "workflows", "*.yaml"))
	if len(files) < 3 {
		t.Fatalf("want the ci, release and promote workflows, found %v", files)
	}
	var rel []string
	for _, f := range files {
		r, _ := filepath.Rel(repoRoot, f)
		rel = append(rel, r)
	}
	if out, err := actionlint(t, rel...); err != nil {
		t.Fatalf("actionlint: %v\n%s", err, out)
	}
}

// A planted broken workflow (an unknown runner label, an expression that
// names an undefined step output, a job needing a job that does not exist)
// is caught, each with its line.
func TestActionlintCatchesABrokenWorkflow(t *testing.T) {
	out, err := actionlint(t, "test/workflows/testdata/broken.yaml")
	if err == nil {
		t.Fatalf("actionlint passed a broken workflow:\n%s", out)
	}
	for _, want := range []string{`property "nope" is not defined`, `job "publish" needs job "missing"`} {
		if !strings.Contains(out, want) {
			t.Errorf("actionlint output lacks %q:\n%s", want, out)
		}
	}
}

// The release workflow publishes the image platform.yaml declares, with the
// tags verify's "images" check accepts, signs it, and opens the dev PR.
func TestReleasePublishesWhatVerifyAccepts(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "release.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wf := string(data)
	for _, want := range []string{
		"ghcr.io/${{ github.repository_owner }}/ml-inference",
		`tag=sha-${GITHUB_SHA::12}`,
		"cosign sign --yes",
		"id-token: write",
		"image set-tag --env dev",
		"hack/image.sh",
	} {
		if !strings.Contains(wf, want) {
			t.Errorf("release.yaml lacks %q", want)
		}
	}
}
