package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ml-platform/platform/internal/gitops"
)

// Options configure a verify run.
type Options struct {
	Root       string   // repository root
	ConfigPath string   // "" means Root/infrastructure/platform.yaml
	AssetsDir  string   // kube-apiserver and etcd ("" reads KUBEBUILDER_ASSETS)
	CRDDirs    []string // CRDs to install in the test API server
	KyvernoBin string   // the pinned Kyverno CLI ("" reads KYVERNO_BIN)
	SkipServer bool     // every check but the API server's
}

// Summary is what a run did.
type Summary struct {
	Rendered map[string]int // objects per entry point
	Findings []Finding
	Stages   []Stage
}

// Stage is one check as it ran.
type Stage struct {
	Name     string
	Took     time.Duration
	Findings int
	Summary  string
	Err      error
}

// ErrFindings is returned when verify found problems.
var ErrFindings = errors.New("verify failed")

// Run renders the repository once and runs every check in order, printing
// each stage with its time and, at the end, every finding. It returns
// ErrFindings (wrapped with the count) when anything is wrong.
func Run(ctx context.Context, o Options, out io.Writer) (*Summary, error) {
	if o.ConfigPath == "" {
		o.ConfigPath = o.Root + string(os.PathSeparator) + gitops.ConfigFile
	}
	if o.KyvernoBin == "" {
		o.KyvernoBin = os.Getenv("KYVERNO_BIN")
	}
	repo, err := gitops.LoadFile(o.Root, o.ConfigPath)
	if err != nil {
		return nil, err
	}
	// Remote Kustomize bases (Argo CD's, metrics-server's) render from the
	// pinned Go modules that hold the same tags.
	upstreams, err := repo.ResolveUpstreams()
	if err != nil {
		return nil, err
	}
	in := &Inputs{Repo: repo, Renderer: &gitops.Renderer{Upstreams: upstreams}, Options: o}
	if !o.SkipServer {
		// The API server takes seconds to come up and needs nothing from
		// the render: it starts now, and the checks run meanwhile.
		in.cluster = startCluster(o)
		defer in.cluster.stop()
	}
	s := &Summary{Rendered: map[string]int{}}
	fmt.Fprintf(out, "verify %s: %d environments, %d entry points, %d files\n", repo.Rel(o.ConfigPath), len(repo.Environments), len(repo.EntryPoints), len(repo.Files))

	start := time.Now()
	r, fs := Render(repo, in.Renderer)
	in.Rendered = r
	total := 0
	for _, where := range r.Order {
		s.Rendered[repo.Rel(where)] = len(r.Objects[where])
		total += len(r.Objects[where])
	}
	s.record(out, Stage{Name: "render", Took: time.Since(start), Findings: len(fs),
		Summary: fmt.Sprintf("%d objects from %d entry points", total, len(r.Order))})
	s.Findings = append(s.Findings, fs...)

	for _, c := range Checks() {
		if c.Name == "kube-apiserver" && o.SkipServer {
			fmt.Fprintf(out, "  %-5s %-18s %9s  %s\n", "skip", c.Name, "", "--skip-server")
			continue
		}
		start := time.Now()
		fs, summary, err := c.Run(ctx, in)
		st := Stage{Name: c.Name, Took: time.Since(start), Findings: len(fs), Summary: summary, Err: err}
		if err != nil {
			fs = append(fs, Finding{Where: c.Name, Message: err.Error()})
			st.Findings = len(fs)
		}
		s.record(out, st)
		s.Findings = append(s.Findings, fs...)
		if ctx.Err() != nil {
			return s, ctx.Err()
		}
	}
	fmt.Fprintf(out, "  %-5s %-18s %8.1fs  (kustomize builds: %d)\n", "", "total", time.Since(start).Seconds(), in.Renderer.Builds)

	for _, f := range s.Findings {
		f.Where = repo.Rel(f.Where)
		fmt.Fprintf(out, "FAIL %s\n", f)
	}
	if n := len(s.Findings); n > 0 {
		return s, fmt.Errorf("%w: %d findings", ErrFindings, n)
	}
	fmt.Fprintln(out, "verify: ok")
	return s, nil
}

func (s *Summary) record(out io.Writer, st Stage) {
	s.Stages = append(s.Stages, st)
	mark := "ok"
	if st.Findings > 0 {
		mark = "FAIL"
	}
	summary := st.Summary
	if st.Findings > 0 {
		summary = plural(st.Findings, "finding", "findings") + "; " + summary
	}
	fmt.Fprintf(out, "  %-5s %-18s %8.3fs  %s\n", mark, st.Name, st.Took.Seconds(), summary)
}
