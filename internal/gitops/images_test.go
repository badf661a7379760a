package gitops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A deploy PR changes one line: the tag of the named image, nothing else.
func TestSetImageTagChangesOneLine(t *testing.T) {
	dir := t.TempDir()
	orig := `# comment
images:
  - name: other/image
    newTag: 1.0.0
  - name: ghcr.io/ml-platform/ml-inference
    newTag: sha-000000000000 # the version running here

replicas:
  - name: ml-inference
    count: 2
`
	p := filepath.Join(dir, "kustomization.yaml")
	os.WriteFile(p, []byte(orig), 0o644)
	if tag, err := ImageTag(dir, "ghcr.io/ml-platform/ml-inference"); err != nil || tag != "sha-000000000000" {
		t.Fatalf("tag %q %v", tag, err)
	}
	if err := SetImageTag(dir, "ghcr.io/ml-platform/ml-inference", "sha-0123456789ab"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := strings.Replace(orig, "sha-000000000000", "sha-0123456789ab", 1)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []struct{ image, tag, want string }{
		{"nope/image", "x", "no entry named nope/image"},
		{"ghcr.io/ml-platform/ml-inference", "bad tag", "not a valid image tag"},
	} {
		if err := SetImageTag(dir, bad.image, bad.tag); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: err %v, want %q", bad, err, bad.want)
		}
	}
}

// The environments of this repository all name the published image.
func TestEnvironmentsNameThePublishedImage(t *testing.T) {
	r, err := Load(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range r.Environments {
		if tag, err := ImageTag(e.Path, "ghcr.io/ml-platform/ml-inference"); err != nil || !strings.HasPrefix(tag, "sha-") {
			t.Errorf("%s: tag %q, %v", e.Name, tag, err)
		}
	}
}
