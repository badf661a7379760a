// Package abtest is the A/B experiment's live run: the real ml-inference
// binary (internal/inferencetest) serves v1 and v2 at a 50/50 split, sticky
// per X-User-ID, with a shared feedback key; a client simulator sends
// predictions and, for each, the user's verdict drawn from fixed true
// accuracies (seeded), to a replica other than the one that predicted where
// there are two; a real VictoriaMetrics scrapes every replica with the labels
// vmagent gives a pod; and the experiment's report (internal/abreport, what
// `platformctl abtest report` runs) reads VictoriaMetrics and decides.
//
// Three namespaces run at once, each with its own servers:
//
//   - ab-lift, two replicas: true accuracies 0.80 (v1) and 0.86 (v2). The
//     report must say treatment_wins within the planned sample.
//   - ab-aa, one replica: 0.80 in both arms. The report must say
//     no_difference at the planned sample, never a winner.
//   - ab-srm, one replica: a treatment whose feedback is lost a third of the
//     time (a broken feedback widget), so feedback arrives 60/40 under the
//     50/50 split. The report must flag a sample-ratio mismatch, though the
//     treatment is more accurate: the planted failure.
//
// The client is sequential and seeded, so each namespace's events are the
// same on every run; only when VictoriaMetrics' scrapes fall (the looks)
// varies. Before reading the live verdict the test replays the events
// offline at every 10th event and checks that no set of looks could change
// it (the A/A path never crosses, the lift's verdict at the plan holds):
// the test is deterministic by construction.
package abtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	prommodel "github.com/prometheus/common/model"

	"github.com/ml-platform/platform/internal/abreport"
	"github.com/ml-platform/platform/internal/abtest"
	"github.com/ml-platform/platform/internal/dashboards"
	"github.com/ml-platform/platform/internal/experiment"
	"github.com/ml-platform/platform/internal/inferencetest"
	"github.com/ml-platform/platform/internal/testtools"
)

var repoRoot = filepath.Join("..", "..")

func TestMain(m *testing.M) { os.Exit(inferencetest.Main(m)) }

// scenario is one namespace of the run.
type scenario struct {
	namespace string
	replicas  int
	accuracy  [2]float64 // true accuracy of v1, v2
	// keepTreatmentFeedback is the share of the treatment's feedback that
	// reaches the server (1: all).
	keepTreatmentFeedback float64
	events                int // feedback events to send
	seed                  uint64
	want                  abtest.Verdict

	servers []*inferencetest.Process
	sent    []event // what the client sent, in order
	err     error
}

// event is one feedback the server counted.
type event struct {
	arm     int // 0 control (v1), 1 treatment (v2)
	correct bool
}

var labels = []string{"positive", "negative", "neutral"}

// eventsPerSecond paces each namespace's client.
const eventsPerSecond = 250

var texts = []string{
	"The battery is great but the screen is dim",
	"I love this phone",
	"Terrible support, never again",
	"The box is blue",
	"not bad at all :)",
}

func TestABExperimentLive(t *testing.T) {
	if testing.Short() {
		t.Skip("a live run of ml-inference and VictoriaMetrics")
	}
	vmBin := testtools.Bin(t, "VICTORIA_METRICS_BIN", "victoria-metrics")
	spec, err := experiment.Load(filepath.Join("testdata", "experiments", "simulated.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Design().PlanFor(spec.Primary.Baseline)
	if err != nil {
		t.Fatal(err)
	}
	planned := int(math.Ceil(plan.Total()))
	dir := t.TempDir()
	began := time.Now()

	key := filepath.Join(dir, "feedback-key")
	if err := os.WriteFile(key, []byte("the-live-test-key-shared-by-every-replica\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	scenarios := []*scenario{
		{namespace: "ab-lift", replicas: 2, accuracy: [2]float64{0.80, 0.86}, keepTreatmentFeedback: 1, events: planned, seed: 1, want: abtest.TreatmentWins},
		{namespace: "ab-aa", replicas: 1, accuracy: [2]float64{0.80, 0.80}, keepTreatmentFeedback: 1, events: planned, seed: 2, want: abtest.NoDifference},
		{namespace: "ab-srm", replicas: 1, accuracy: [2]float64{0.80, 0.86}, keepTreatmentFeedback: 2.0 / 3, events: 1500, seed: 3, want: abtest.SampleRatioMismatch},
	}
	var targets strings.Builder
	for _, sc := range scenarios {
		for r := range sc.replicas {
			p := inferencetest.Run(t, inferencetest.Options{
				Args: []string{"--models-dir", filepath.Join(repoRoot, "models"), "--traffic", spec.Traffic(),
					"--feedback-key-file", key},
				Noise:   `"msg":"request"`,
				LogFile: filepath.Join(dir, fmt.Sprintf("%s-%d.log", sc.namespace, r)),
			})
			sc.servers = append(sc.servers, p)
			fmt.Fprintf(&targets, "      - targets: [%q]\n        labels: {namespace: %s, pod: ml-inference-%d, app: ml-inference, env: test}\n", p.Addr, sc.namespace, r)
		}
	}

	// VictoriaMetrics scrapes every replica each second, with the labels
	// vmagent's relabelling gives a pod (namespace, pod, app, env).
	scrape := "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: kubernetes-pods\n    static_configs:\n" + targets.String()
	scrapeFile := filepath.Join(dir, "scrape.yaml")
	if err := os.WriteFile(scrapeFile, []byte(scrape), 0o644); err != nil {
		t.Fatal(err)
	}
	vm := startVM(t, dir, vmBin, scrapeFile)
	client, err := promapi.NewClient(promapi.Config{Address: vm})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(client)
	ctx := t.Context()
	// The split must be on record before the first event, as it is in a
	// cluster where the pods start before users arrive.
	for _, sc := range scenarios {
		waitFor(t, api, fmt.Sprintf(`count(model_traffic_weight_percent{namespace=%q, version="v2"} == %d)`, sc.namespace, spec.Split.Treatment), float64(sc.replicas))
	}
	t.Logf("servers and VictoriaMetrics up in %s; plan: %d feedback events", time.Since(began).Round(time.Millisecond), planned)

	loadStart := time.Now()
	var wg sync.WaitGroup
	for _, sc := range scenarios {
		wg.Go(func() { sc.err = sc.drive(ctx) })
	}
	wg.Wait()
	for _, sc := range scenarios {
		if sc.err != nil {
			t.Fatalf("%s: %v", sc.namespace, sc.err)
		}
	}
	t.Logf("clients done in %s", time.Since(loadStart).Round(time.Millisecond))
	for _, sc := range scenarios {
		waitFor(t, api, fmt.Sprintf(`sum(model_feedback_total{namespace=%q, routing="split"})`, sc.namespace), float64(len(sc.sent)))
	}
	time.Sleep(1500 * time.Millisecond) // one more scrape of everything

	for _, sc := range scenarios {
		t.Run(sc.namespace, func(t *testing.T) {
			sc.checkOffline(t, spec)
			data, err := abreport.Read(ctx, api, abreport.Window{
				Namespace: sc.namespace, Control: spec.Control, Treatment: spec.Treatment,
				TreatmentPercent: float64(spec.Split.Treatment), MaxDuration: spec.MaxDuration(),
				Step: time.Second, LatencyThreshold: spec.Guardrails.Latency.ThresholdSeconds,
			})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := abreport.Build(spec, data)
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			t.Logf("platformctl abtest report, %s:\n%s", sc.namespace, text.String())
			res := rep.Result
			if res.Verdict != sc.want {
				t.Errorf("verdict %s (%s), want %s", res.Verdict, res.Reason, sc.want)
			}
			// The counts VictoriaMetrics holds are what the client sent.
			var sent [2]int64
			for _, e := range sc.sent {
				sent[e.arm]++
			}
			if res.Feedback != sent {
				t.Errorf("report counts feedback %v, the client sent %v", res.Feedback, sent)
			}
			if sc.want == abtest.TreatmentWins && res.Feedback[0]+res.Feedback[1] > int64(planned) {
				t.Errorf("treatment won after %d feedback events, beyond the planned %d", res.Feedback[0]+res.Feedback[1], planned)
			}
			if sc.want == abtest.TreatmentWins {
				first := firstWin(rep.History)
				t.Logf("%s: first read treatment_wins at look %d of %d, after %d feedback events of the planned %d", sc.namespace, first.Look, res.Looks, first.Feedback[0]+first.Feedback[1], planned)
				png := filepath.Join(dir, sc.namespace+".png")
				if err := rep.WritePNG(png); err != nil {
					t.Fatal(err)
				}
				if fi, err := os.Stat(png); err != nil || fi.Size() < 10_000 {
					t.Errorf("plot %s: %v (%v bytes)", png, err, fi)
				}
				if out := os.Getenv("ABTEST_PLOT_DIR"); out != "" {
					copyFile(t, png, filepath.Join(out, sc.namespace+".png"))
				}
			}
		})
	}
	checkDashboard(t, api, "ab-lift")
	t.Logf("live run took %s", time.Since(began).Round(time.Millisecond))
}

// checkDashboard runs every query of the committed experiment dashboard on
// the live data of one namespace (variables replaced as Grafana would):
// each must evaluate without error, and the accuracy panel must show the
// accuracies the feedback gave.
func checkDashboard(t *testing.T, api promv1.API, ns string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "infrastructure", "base", "observability", "dashboards", "ml-inference-experiments.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := dashboards.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$namespace", ns, "$control", "v1", "$treatment", "v2", "$__range", "10m", "$__rate_interval", "1m")
	n := 0
	for _, q := range d.Queries {
		if q.Type != "prometheus" {
			continue
		}
		expr := vars.Replace(q.Expr)
		if m := regexp.MustCompile(`^label_values\((.+), \w+\)$`).FindStringSubmatch(expr); m != nil {
			expr = m[1]
		}
		v, _, _, err := api.Query(t.Context(), expr, time.Now())
		if err != nil {
			t.Errorf("dashboard %s: %v\n%s", q.Panel, err, expr)
			continue
		}
		n++
		if q.Panel == "Accuracy over the range" {
			vec, _ := v.(prommodel.Vector)
			if len(vec) != 2 {
				t.Errorf("dashboard %q: %d series, want one per version: %v", q.Panel, len(vec), v)
			}
			for _, s := range vec {
				if a := float64(s.Value); a < 0.7 || a > 0.95 {
					t.Errorf("dashboard %q: %s accuracy %v", q.Panel, s.Metric["version"], a)
				}
			}
			t.Logf("dashboard %q on %s: %v", q.Panel, ns, v)
		}
	}
	t.Logf("the experiment dashboard's %d queries evaluate on %s's live data", n, ns)
}

func firstWin(h []abtest.Point) abtest.Point {
	for _, p := range h {
		if p.Verdict == abtest.TreatmentWins {
			return p
		}
	}
	return abtest.Point{}
}

// drive sends sc.events predictions with feedback: a new user per
// prediction (sticky routing spreads users over the arms by the split), the
// verdict drawn from the version's true accuracy, sent to a replica other
// than the one that predicted when there are two.
func (sc *scenario) drive(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(sc.seed, 0xfeedbac))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	// Paced, so the one-second scrapes see the experiment grow over a
	// dozen looks.
	tick := time.NewTicker(time.Second / eventsPerSecond)
	defer tick.Stop()
	for i := 0; len(sc.sent) < sc.events; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		at := rng.IntN(len(sc.servers))
		body := fmt.Sprintf(`{"text":%q}`, texts[rng.IntN(len(texts))])
		req, _ := http.NewRequestWithContext(ctx, "POST", sc.servers[at].URL("/predict"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-User-ID", fmt.Sprintf("%s-user-%d", sc.namespace, i))
		var pred struct {
			Sentiment     string `json:"sentiment"`
			ModelVersion  string `json:"model_version"`
			FeedbackToken string `json:"feedback_token"`
		}
		if err := call(client, req, &pred); err != nil {
			return fmt.Errorf("predict %d: %w", i, err)
		}
		arm := 0
		if pred.ModelVersion == "v2" {
			arm = 1
		}
		correct := rng.Float64() < sc.accuracy[arm]
		label := pred.Sentiment
		if !correct {
			for label == pred.Sentiment {
				label = labels[rng.IntN(len(labels))]
			}
		}
		if arm == 1 && rng.Float64() >= sc.keepTreatmentFeedback {
			continue // the treatment's feedback widget lost this one
		}
		fb, _ := json.Marshal(map[string]string{"feedback_token": pred.FeedbackToken, "label": label})
		other := (at + 1) % len(sc.servers)
		req, _ = http.NewRequestWithContext(ctx, "POST", sc.servers[other].URL("/feedback"), bytes.NewReader(fb))
		req.Header.Set("Content-Type", "application/json")
		var rec struct {
			Outcome string `json:"outcome"`
		}
		if err := call(client, req, &rec); err != nil {
			return fmt.Errorf("feedback %d: %w", i, err)
		}
		if rec.Outcome != map[bool]string{true: "correct", false: "incorrect"}[correct] {
			return fmt.Errorf("feedback %d: server says %q for a verdict drawn %v", i, rec.Outcome, correct)
		}
		sc.sent = append(sc.sent, event{arm: arm, correct: correct})
	}
	return nil
}

func call(client *http.Client, req *http.Request, v any) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, data)
	}
	return json.Unmarshal(data, v)
}

// checkOffline replays the client's events through the verdict at every
// 10th event. Whatever the scrapes' timing, the live looks are prefixes of
// these events, so: for A/A no prefix may declare a winner (then no set of
// looks can); for the lift, the full sample alone must say treatment_wins
// (a rejection at the last look holds whatever came before); for the SRM,
// the full sample must be flagged.
func (sc *scenario) checkOffline(t *testing.T, spec *experiment.Spec) {
	t.Helper()
	a, err := abtest.NewAnalyzer(spec.Design())
	if err != nil {
		t.Fatal(err)
	}
	var cum abtest.Look
	for i, e := range sc.sent {
		arm := &cum.Control
		if e.arm == 1 {
			arm = &cum.Treatment
		}
		arm.Feedback++
		if e.correct {
			arm.Correct++
		}
		if (i+1)%10 != 0 && i+1 != len(sc.sent) {
			continue
		}
		r, err := a.Decide([]abtest.Look{cum}, abtest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if sc.want == abtest.NoDifference && (r.Verdict == abtest.TreatmentWins || r.Verdict == abtest.ControlWins) {
			t.Fatalf("seed %d: the A/A events read %s at event %d: another set of looks could declare a false winner; choose another seed", sc.seed, r.Verdict, i+1)
		}
		if i+1 == len(sc.sent) && r.Verdict != sc.want {
			t.Fatalf("seed %d: the events alone read %s (%s), want %s: choose another seed", sc.seed, r.Verdict, r.Reason, sc.want)
		}
	}
}

// waitFor polls an instant query until its one sample is want (30 s at
// most).
func waitFor(t *testing.T, api promv1.API, q string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		v, _, _, err := api.Query(t.Context(), q, time.Now())
		last = fmt.Sprint(v, err)
		if vec, ok := v.(prommodel.Vector); err == nil && ok && len(vec) == 1 && float64(vec[0].Value) == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not reach %v within 30 s; last: %s", q, want, last)
}

// startVM runs VictoriaMetrics on a loopback port and returns its URL.
func startVM(t *testing.T, dir, bin, scrapeFile string) string {
	t.Helper()
	logPath := filepath.Join(dir, "victoria-metrics.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-httpListenAddr=127.0.0.1:0", "-storageDataPath="+filepath.Join(dir, "vm-data"),
		"-retentionPeriod=1d", "-promscrape.config="+scrapeFile, "-search.latencyOffset=0s", "-search.disableCache")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start VictoriaMetrics: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("--- VictoriaMetrics log tail:\n%s", tail(string(data), 30))
		}
	})
	listening := regexp.MustCompile(`started server at (http://[0-9.]+:[0-9]+)/`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(logPath)
		if m := listening.FindSubmatch(data); m != nil {
			base := string(m[1])
			if resp, err := http.Get(base + "/health"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return base
				}
			}
		}
		select {
		case <-exited:
			t.Fatalf("VictoriaMetrics exited:\n%s", tail(string(data), 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("VictoriaMetrics did not start within 30 s")
	return ""
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
