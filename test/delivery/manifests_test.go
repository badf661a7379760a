package delivery

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/dashboards"
)

// TestVendoredRolloutsManifest: infrastructure/base/argo-rollouts/upstream/
// install.yaml is the pinned release's manifest byte for byte (the module of
// tools/crds, which tools/argo-rollouts builds the controller from), so what
// Argo CD installs is what the tests run. A planted edit must be caught.
func TestVendoredRolloutsManifest(t *testing.T) {
	module := filepath.Join(moduleDir(t, "/argo-rollouts@"), "manifests", "install.yaml")
	vendored := filepath.Join(repoRoot, "infrastructure", "base", "argo-rollouts", "upstream", "install.yaml")
	want, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(vendored)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameFile(got, want); err != "" {
		t.Errorf("%s differs from %s (%s): copy the module's file again (`cp %s %s`), never edit it; patches go in its kustomization", vendored, module, err, module, vendored)
	}
	planted := bytes.Replace(want, []byte("image: quay.io/argoproj/argo-rollouts:latest"), []byte("image: quay.io/argoproj/argo-rollouts:v1.9.0"), 1)
	if sameFile(planted, want) == "" {
		t.Error("a planted edit of the manifest went unnoticed")
	}
}

// sameFile says where two files first differ ("" if they do not).
func sameFile(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	line := 1
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return "first difference on line " + strconv.Itoa(line)
		}
		if got[i] == '\n' {
			line++
		}
	}
	return "one is a prefix of the other, up to line " + strconv.Itoa(line)
}

// TestArgoCDKnowsRolloutHealth: the Argo CD release the platform runs
// (v3.5.3, whose module tools/crds pins for its CRDs) ships a health check
// for Rollouts, so the environments' Applications report a canary's health
// with no configuration of ours (infrastructure/argocd/apps/ml-inference-*.yaml).
func TestArgoCDKnowsRolloutHealth(t *testing.T) {
	dir := moduleDir(t, "/argo-cd/v3@")
	for _, f := range []string{"Rollout/health.lua", "AnalysisRun/health.lua"} {
		path := filepath.Join(dir, "resource_customizations", "argoproj.io", f)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("Argo CD has no built-in health check %s: add one to argocd-cm (apps/argocd.yaml): %v", f, err)
			continue
		}
		if !bytes.Contains(data, []byte("hs.status")) {
			t.Errorf("%s does not set a health status", path)
		}
	}
}

// dashboardMetricsExist: every series of the Argo Rollouts controller that
// the rollout dashboard reads (dashboards.RolloutsControllerMetrics) is on
// the real controller's /metrics once rollouts have run, and every judge
// series it reads is on the real judge's; a planted name is not.
func dashboardMetricsExist(t *testing.T, s *suite) {
	ctx := context.Background()
	controller, err := get(ctx, s.cluster.RolloutsMetrics)
	if err != nil {
		t.Fatal(err)
	}
	judge, err := get(ctx, s.judge+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exposes := func(body []byte, name string) bool {
		for line := range strings.SplitSeq(string(body), "\n") {
			if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
				return true
			}
		}
		return false
	}
	for name := range dashboards.RolloutsControllerMetrics {
		if !exposes(controller, name) {
			t.Errorf("the Argo Rollouts controller exports no %s (dashboards.RolloutsControllerMetrics): fix the list and the rollout dashboard", name)
		}
	}
	files, err := dashboards.Generate()
	if err != nil {
		t.Fatal(err)
	}
	judged, err := dashboards.JudgeMetrics()
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, f := range files {
		d, err := dashboards.Parse(f.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range d.Queries {
			if q.Type != "prometheus" {
				continue
			}
			names, err := dashboards.SelectedMetrics(q.Expr, d.Variables)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				if _, ok := judged[n]; ok {
					used++
					if !exposes(judge, n) {
						t.Errorf("dashboard %s reads %s, which the running judge does not export", f.UID, n)
					}
				}
			}
		}
	}
	if used == 0 {
		t.Error("no dashboard reads a judge metric")
	}
	if exposes(controller, "rollout_info_planted") || exposes(judge, "judge_planted_total") {
		t.Error("a planted metric name was found: the check cannot fail")
	}
	// As the dashboard selects them: by the environment's namespace, in
	// VictoriaMetrics, scraped by the shipped job (honor_labels).
	for _, q := range []string{
		`rollout_info{namespace="` + nsGood + `", name="ml-inference"}`,
		`analysis_run_metric_phase{namespace="` + nsGood + `"}`,
		`judge_verdicts_total{namespace="` + nsGood + `"}`,
	} {
		body, err := get(ctx, s.vm+"/api/v1/query?query="+url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), `"result":[{`) {
			t.Errorf("VictoriaMetrics has no %s (the dashboard would show nothing): %s", q, body)
		}
	}
	body, err := get(ctx, s.vm+"/api/v1/query?query="+url.QueryEscape(`rollout_info{exported_namespace!=""}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), `"result":[{`) {
		t.Errorf("the controller's namespace label was renamed exported_namespace: %s", body)
	}
}
