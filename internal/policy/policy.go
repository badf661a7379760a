// Package policy runs the Kyverno CLI (`kyverno apply`, pinned in
// tools/kyverno) against rendered manifests, so tests can prove that every
// environment passes the policies in infrastructure/policies/kyverno as they
// are deployed: both modes, with their PolicyExceptions, and the namespaces'
// env labels that select the mode.
package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/render"
)

// Result is one policy result of a `kyverno apply` run, from the policy
// reports it prints.
type Result struct {
	Policy    string
	Rule      string
	Result    string // pass, fail, warn, error, skip
	Message   string
	Kind      string
	Namespace string
	Name      string
}

func (r Result) String() string {
	s := fmt.Sprintf("%s %s/%s/%s: %s", r.Policy, r.Kind, r.Namespace, r.Name, r.Result)
	if r.Message != "" {
		s += ": " + r.Message
	}
	return s
}

// Run is the outcome of one `kyverno apply`.
type Run struct {
	Results []Result
	Output  string // everything the CLI printed, for failure messages
}

// Count returns how many results have the given status.
func (r *Run) Count(status string) int {
	n := 0
	for _, res := range r.Results {
		if res.Result == status {
			n++
		}
	}
	return n
}

// Apply runs `bin apply` of policies (ValidatingPolicies and the
// PolicyExceptions that go with them, as the policy bundle renders them) to
// resources, in a temporary directory under dir. The labels of every
// Namespace among resources are passed to the CLI (a values file), so that
// namespaceSelectors match as on a cluster. A CLI that cannot run, or output
// without policy reports, is an error; policy failures are not (see Results).
func Apply(bin, dir string, policies, resources []render.Object) (*Run, error) {
	var pols, excs, namespaces []*unstructured.Unstructured
	for _, o := range policies {
		if o.GetKind() == "PolicyException" {
			excs = append(excs, o.Unstructured)
		} else {
			pols = append(pols, o.Unstructured)
		}
	}
	var res []*unstructured.Unstructured
	for _, o := range resources {
		res = append(res, o.Unstructured)
		if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
			namespaces = append(namespaces, o.Unstructured)
		}
	}
	if len(pols) == 0 || len(res) == 0 {
		return nil, fmt.Errorf("kyverno apply: %d policies, %d resources: nothing to check", len(pols), len(res))
	}
	work, err := os.MkdirTemp(dir, "kyverno-apply-")
	if err != nil {
		return nil, err
	}
	args := []string{"apply", write(work, "policies.yaml", pols, &err), "--resource", write(work, "resources.yaml", res, &err),
		"--policy-report", "--output-format", "json", "--remove-color"}
	if len(excs) > 0 {
		args = append(args, "--exception", write(work, "exceptions.yaml", excs, &err))
	}
	if len(namespaces) > 0 {
		values := map[string]any{"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Value", "namespaces": namespaces}
		args = append(args, "--values-file", write(work, "values.yaml", []*unstructured.Unstructured{{Object: values}}, &err))
	}
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	run := &Run{Output: out.String()}
	if _, ok := runErr.(*exec.ExitError); runErr != nil && !ok {
		return run, fmt.Errorf("run %s: %w", bin, runErr)
	}
	reports := 0
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var rep report
		if err := json.Unmarshal(line, &rep); err != nil || !strings.HasSuffix(rep.Kind, "Report") {
			continue
		}
		reports++
		for _, r := range rep.Results {
			for _, s := range r.Subjects() {
				run.Results = append(run.Results, Result{Policy: r.Policy, Rule: r.Rule, Result: r.Result, Message: r.Message,
					Kind: s.Kind, Namespace: s.Namespace, Name: s.Name})
			}
		}
	}
	if reports == 0 {
		return run, fmt.Errorf("kyverno apply printed no policy report (exit: %v); output:\n%s", runErr, run.Output)
	}
	if runErr != nil && run.Count("fail")+run.Count("error") == 0 {
		return run, fmt.Errorf("kyverno apply failed (%v) with no failing result; output:\n%s", runErr, run.Output)
	}
	return run, nil
}

type report struct {
	Kind    string         `json:"kind"`
	Results []reportResult `json:"results"`
}

type reportResult struct {
	Policy    string `json:"policy"`
	Rule      string `json:"rule"`
	Result    string `json:"result"`
	Message   string `json:"message"`
	Resources []ref  `json:"resources"`
	Subject   []ref  `json:"subjects"`
}

func (r reportResult) Subjects() []ref {
	if len(r.Subject) > 0 {
		return r.Subject
	}
	return r.Resources
}

type ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// write writes objs as a multi-document YAML file and returns its path; the
// first error is kept in *errp.
func write(dir, name string, objs []*unstructured.Unstructured, errp *error) string {
	path := filepath.Join(dir, name)
	var buf bytes.Buffer
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil && *errp == nil {
			*errp = fmt.Errorf("%s: %w", name, err)
		}
		buf.WriteString("---\n")
		buf.Write(data)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil && *errp == nil {
		*errp = err
	}
	return path
}
