package verify

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ml-platform/platform/internal/render"
)

// checkSecrets is SecretsInGit as a stage of verify.
func checkSecrets(_ context.Context, in *Inputs) ([]Finding, string, error) {
	files, err := yamlFiles(in.Repo.Root)
	if err != nil {
		return nil, "", fmt.Errorf("list YAML files: %w", err)
	}
	return SecretsInGit(in.Repo.Root), plural(len(files), "YAML file", "YAML files") + " scanned for Secrets with data", nil
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
