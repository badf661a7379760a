// Package mlplatform checks the ml-platform namespace's manifests
// (infrastructure/base/ml-platform and its production overlay) for what no
// generic check sees: MLflow runs the release the tests run, its arguments
// name the Services and Secrets that exist, and its allowed hosts cover the
// name its clients use.
package mlplatform

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/render"
)

var (
	repoRoot = filepath.Join("..", "..")
	variants = []string{
		filepath.Join(repoRoot, "infrastructure", "base", "ml-platform"),
		filepath.Join(repoRoot, "infrastructure", "overlays", "ml-platform-prod"),
	}
	secrets = filepath.Join(repoRoot, "infrastructure", "secrets", "base")
)

// find returns the rendered object of that kind and name, or fails.
func find(t *testing.T, objs []render.Object, kind, name string) render.Object {
	t.Helper()
	i := slices.IndexFunc(objs, func(o render.Object) bool { return o.GetKind() == kind && o.GetName() == name })
	if i < 0 {
		t.Fatalf("no %s/%s rendered", kind, name)
	}
	return objs[i]
}

func container(t *testing.T, o render.Object) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		t.Fatalf("%s has no container", o.Ref())
	}
	return cs[0].(map[string]any)
}

// TestMLflowIsThePinnedRelease: the image is the -full variant (PostgreSQL
// driver, boto3) of the release tools/python/mlflow pins for the tests.
func TestMLflowIsThePinnedRelease(t *testing.T) {
	req, err := os.ReadFile(filepath.Join(repoRoot, "tools", "python", "mlflow", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^mlflow==(\S+)$`).FindSubmatch(req)
	if m == nil {
		t.Fatal("tools/python/mlflow/requirements.txt does not pin mlflow")
	}
	want := "ghcr.io/mlflow/mlflow:v" + string(m[1]) + "-full"
	for _, v := range variants {
		objs, err := render.Build(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := container(t, find(t, objs, "Deployment", "mlflow"))["image"]; got != want {
			t.Errorf("%s: MLflow image %v, want %s (the tests' release): bump both together", v, got, want)
		}
	}
}

// TestMLflowArgumentsNameWhatExists: the backend store URI names the
// PostgreSQL Service on a port it exposes and the database it creates; the
// allowed hosts cover the MLflow Service's in-cluster names; every Secret a
// pod reads is written by an ExternalSecret, with the keys it reads.
func TestMLflowArgumentsNameWhatExists(t *testing.T) {
	produced := map[string][]string{} // Secret name -> keys
	esObjs, err := render.Build(secrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range esObjs {
		if o.GetKind() != "ExternalSecret" || o.GetNamespace() != "ml-platform" {
			continue
		}
		target, _, _ := unstructured.NestedString(o.Object, "spec", "target", "name")
		data, _, _ := unstructured.NestedSlice(o.Object, "spec", "data")
		for _, d := range data {
			key, _, _ := unstructured.NestedString(d.(map[string]any), "secretKey")
			produced[target] = append(produced[target], key)
		}
	}
	for _, v := range variants {
		t.Run(filepath.Base(v), func(t *testing.T) {
			objs, err := render.Build(v)
			if err != nil {
				t.Fatal(err)
			}
			mlflow := container(t, find(t, objs, "Deployment", "mlflow"))
			args, _, _ := unstructured.NestedStringSlice(mlflow, "args")
			arg := func(flag string) string {
				for _, a := range args {
					if v, ok := strings.CutPrefix(a, flag+"="); ok {
						return v
					}
				}
				t.Fatalf("mlflow has no %s", flag)
				return ""
			}
			uri := regexp.MustCompile(`^postgresql://\$\(DB_USER\):\$\(DB_PASSWORD\)@([a-z0-9-]+):(\d+)/([a-z]+)$`).FindStringSubmatch(arg("--backend-store-uri"))
			if uri == nil {
				t.Fatalf("--backend-store-uri %q is not postgresql://$(DB_USER):$(DB_PASSWORD)@host:port/db", arg("--backend-store-uri"))
			}
			svc := find(t, objs, "Service", uri[1])
			ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
			if !slices.ContainsFunc(ports, func(p any) bool { n, _, _ := unstructured.NestedInt64(p.(map[string]any), "port"); return n == 5432 }) || uri[2] != "5432" {
				t.Errorf("the backend store URI's port %s is not a port of Service %s", uri[2], uri[1])
			}
			db := container(t, find(t, objs, "StatefulSet", "mlflow-postgres"))
			env, _, _ := unstructured.NestedSlice(db, "env")
			if !slices.ContainsFunc(env, func(e any) bool {
				m := e.(map[string]any)
				return m["name"] == "POSTGRES_DB" && m["value"] == uri[3]
			}) {
				t.Errorf("PostgreSQL does not create database %q (POSTGRES_DB)", uri[3])
			}
			hosts := strings.Split(arg("--allowed-hosts"), ",")
			for _, h := range []string{"mlflow.ml-platform.svc:5000", "mlflow.ml-platform.svc.cluster.local:5000", "localhost:5000"} {
				if !slices.Contains(hosts, h) {
					t.Errorf("--allowed-hosts lacks %s: MLflow would refuse those clients (DNS-rebinding protection)", h)
				}
			}
			for _, o := range objs {
				spec, found, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
				if !found {
					continue
				}
				cs, _, _ := unstructured.NestedSlice(spec, "containers")
				for _, c := range cs {
					env, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
					for _, e := range env {
						name, _, _ := unstructured.NestedString(e.(map[string]any), "valueFrom", "secretKeyRef", "name")
						key, _, _ := unstructured.NestedString(e.(map[string]any), "valueFrom", "secretKeyRef", "key")
						if name != "" && !slices.Contains(produced[name], key) {
							t.Errorf("%s reads key %q of Secret %s, which no ExternalSecret of %s writes", o.Ref(), key, name, secrets)
						}
					}
				}
			}
		})
	}
}
