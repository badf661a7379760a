package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/gitops"
)

// TestImageTag: `image tag` prints the tag an environment's overlay, or any
// kustomization (ml-platform's), sets; a directory with no kustomization is
// an error naming it.
func TestImageTag(t *testing.T) {
	chdirRepo(t)
	for args, dir := range map[string]string{
		"--env prod":                            "infrastructure/overlays/prod",
		"--dir infrastructure/base/ml-platform": "infrastructure/base/ml-platform",
	} {
		want, err := gitops.ImageTag(dir, imageName)
		if err != nil || !strings.HasPrefix(want, "sha-") && !strings.HasPrefix(want, "v") {
			t.Fatalf("%s: %q %v", dir, want, err)
		}
		var out strings.Builder
		if err := run(context.Background(), append([]string{"image", "tag"}, strings.Fields(args)...), os.Getenv, &out, io.Discard); err != nil || strings.TrimSpace(out.String()) != want {
			t.Errorf("image tag %s: %q %v, want %q", args, out.String(), err, want)
		}
	}
	err := run(context.Background(), []string{"image", "tag", "--dir", filepath.Join("infrastructure", "nope")}, os.Getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "infrastructure/nope") {
		t.Errorf("a directory with no kustomization: %v", err)
	}
}
