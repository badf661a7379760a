package envdiff

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/render"
)

func obj(kind, name, ns string, spec map[string]any) render.Object {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec}}
	return render.Object{Unstructured: u}
}

func TestDiff(t *testing.T) {
	dev := []render.Object{
		obj("Deployment", "api", "dev", map[string]any{"replicas": int64(1), "containers": []any{map[string]any{"image": "x:1"}}}),
		obj("ConfigMap", "only-dev", "dev", nil),
	}
	prod := []render.Object{
		obj("Deployment", "api", "prod", map[string]any{"replicas": int64(5), "containers": []any{map[string]any{"image": "x:1"}}, "extra": true}),
	}
	var b strings.Builder
	n := Write(&b, "dev", "prod", Diff("dev", dev, "prod", prod))
	out := b.String()
	for _, want := range []string{
		"ConfigMap/only-dev: only in dev",
		"~ metadata.namespace: \"dev\" -> \"prod\"",
		"~ spec.replicas: 1 -> 5",
		"+ spec.extra: true (only in prod)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "image") || n != 2 {
		t.Errorf("unexpected diff (%d objects):\n%s", n, out)
	}
}
