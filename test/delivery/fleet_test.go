package delivery

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ml-platform/platform/internal/inferencetest"
)

// faultAnnotation on a pod template asks the fleet to switch on the
// test-only fault injection of that pod's process: its value is the query of
// PUT /debug/fault (internal/fault), e.g. "error_rate=0.2" or "latency=50ms".
// A new value is a new pod template, so a new revision: a faulty canary.
const faultAnnotation = "test.ml-platform.io/fault"

// hashLabel is the label the Rollouts controller puts on its pods.
const hashLabel = "rollouts-pod-template-hash"

// fleet plays the kubelet for the ml-inference pods of one namespace: one
// real process per running pod, stopped (SIGTERM, drained) when the pod
// terminates. It also is the Service's endpoint list: the pods whose process
// answers and that are not terminating.
type fleet struct {
	t         *testing.T
	c         client.Client
	namespace string
	bin       string
	dir       string
	mlflow    string // the suite's MLflow, for the in-cluster registry URL

	mu      sync.Mutex
	pods    map[string]*podProcess // by pod name
	started int                    // processes started in all
	stops   sync.WaitGroup         // processes draining
	done    chan struct{}
	loop    sync.WaitGroup
}

// podProcess is one pod's ml-inference.
type podProcess struct {
	pod, hash, fault string
	proc             *inferencetest.Process
	base             string // http://host:port
	serving          bool   // in the endpoint list
}

func startFleet(t *testing.T, s *suite, namespace string) *fleet {
	f := &fleet{t: t, c: s.cluster.Client, namespace: namespace, bin: s.inference, mlflow: s.mlflow,
		dir: filepath.Join(s.dir, namespace), pods: map[string]*podProcess{}, done: make(chan struct{})}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.loop.Go(f.run)
	t.Cleanup(f.stop)
	return f
}

// run reconciles every 100 ms until stop.
func (f *fleet) run() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-f.done:
			return
		case <-tick.C:
		}
		if err := f.reconcile(); err != nil {
			f.t.Logf("fleet %s: %v", f.namespace, err)
		}
	}
}

func (f *fleet) reconcile() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pods corev1.PodList
	if err := f.c.List(ctx, &pods, client.InNamespace(f.namespace), client.MatchingLabels{"app.kubernetes.io/name": "ml-inference"}); err != nil {
		return err
	}
	live := map[string]bool{}
	for i := range pods.Items {
		pod := &pods.Items[i]
		running := pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil
		if !running {
			continue
		}
		live[pod.Name] = true
		f.mu.Lock()
		_, known := f.pods[pod.Name]
		f.mu.Unlock()
		if known {
			continue
		}
		p, err := f.start(ctx, pod)
		if err != nil {
			return fmt.Errorf("pod %s: %w", pod.Name, err)
		}
		f.mu.Lock()
		f.pods[pod.Name] = p
		f.started++
		f.mu.Unlock()
	}
	// A pod that is gone or terminating leaves the rotation first, then its
	// process gets SIGTERM and drains (--drain-delay), as a kubelet and
	// kube-proxy would do it.
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, p := range f.pods {
		if live[name] {
			continue
		}
		p.serving = false
		delete(f.pods, name)
		f.stops.Go(func() {
			if err := p.proc.Stop(40 * time.Second); err != nil {
				f.t.Errorf("pod %s: ml-inference did not stop cleanly: %v\n%s", p.pod, err, p.proc.Tail(20))
			}
		})
	}
	return nil
}

// shippedMLflow is the registry the shipped Rollout names (the ml-platform
// namespace's Service); the fleet points it at the suite's MLflow.
const shippedMLflow = "http://mlflow.ml-platform.svc:5000"

// hostValue is a container setting as the pod's process on this machine
// takes it. kwok mounts no volume: a setting under an emptyDir's mount (the
// model cache) gets a directory of this pod's own, as an emptyDir is; one
// under any other mount (a Secret's key file) is left out (ok false), and
// the process runs without that feature. The in-cluster MLflow URL becomes
// the suite's MLflow.
func (f *fleet) hostValue(pod *corev1.Pod, c corev1.Container, e corev1.EnvVar) (string, bool, error) {
	if e.Name == "ML_INFERENCE_MLFLOW_URI" {
		if e.Value != shippedMLflow {
			return "", false, fmt.Errorf("%s: %s is %q, want %s (the ml-platform MLflow this test replaces)", pod.Name, e.Name, e.Value, shippedMLflow)
		}
		return f.mlflow, true, nil
	}
	for _, m := range c.VolumeMounts {
		mount := strings.TrimSuffix(m.MountPath, "/")
		if e.Value != mount && !strings.HasPrefix(e.Value, mount+"/") {
			continue
		}
		i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || pod.Spec.Volumes[i].EmptyDir == nil {
			return "", false, nil
		}
		dir := filepath.Join(f.dir, pod.Name+"-"+m.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", false, err
		}
		return dir + strings.TrimPrefix(e.Value, mount), true, nil
	}
	return e.Value, true, nil
}

// start runs the pod's process with the ML_INFERENCE_* settings of its
// container (what the image would read), writes its address on the pod for
// the scrape, and switches on its fault if the template asks for one.
func (f *fleet) start(ctx context.Context, pod *corev1.Pod) (*podProcess, error) {
	var env []string
	args := []string{"--models-dir", filepath.Join(repoRoot, "models"), "--debug-addr", "127.0.0.1:0"}
	for _, c := range pod.Spec.Containers {
		if c.Name != "ml-inference" {
			continue
		}
		for _, e := range c.Env {
			if !strings.HasPrefix(e.Name, "ML_INFERENCE_") || e.ValueFrom != nil {
				continue
			}
			value, ok, err := f.hostValue(pod, c, e)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			env = append(env, e.Name+"="+value)
			// inferencetest turns the drain off unless told: the pod's
			// drain is part of what is tested.
			if e.Name == "ML_INFERENCE_DRAIN_DELAY" {
				args = append(args, "--drain-delay", e.Value)
			}
		}
	}
	p, err := inferencetest.Start(inferencetest.Options{
		Binary:   f.bin,
		Args:     args,
		Env:      env,
		CleanEnv: true,
		LogFile:  filepath.Join(f.dir, pod.Name+".log"),
		Noise:    `"msg":"request"`,
	})
	if err != nil {
		return nil, err
	}
	pp := &podProcess{pod: pod.Name, hash: pod.Labels[hashLabel], fault: pod.Annotations[faultAnnotation], proc: p, base: p.URL("")}
	if pp.fault != "" {
		if err := setFault(ctx, p, pp.fault); err != nil {
			p.Kill()
			return nil, err
		}
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, addressAnnotation, p.Addr)
	if err := f.c.Patch(ctx, pod, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		p.Kill()
		return nil, fmt.Errorf("annotate with the address: %w", err)
	}
	// The readiness probe: a Service sends nothing to a pod before /ready
	// answers 200 (the models are loaded; from the registry that takes a
	// download after the listener is up).
	if err := waitReady(ctx, p.URL("/ready")); err != nil {
		p.Kill()
		return nil, fmt.Errorf("%s: %w\n%s", pod.Name, err, p.Tail(20))
	}
	pp.serving = true
	return pp, nil
}

// waitReady polls url until it answers 200, or ctx ends.
func waitReady(ctx context.Context, url string) error {
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready (GET /ready: %s): %w", last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// setFault PUTs the fault query to the process's debug listener.
func setFault(ctx context.Context, p *inferencetest.Process, query string) error {
	if _, err := url.ParseQuery(query); err != nil {
		return fmt.Errorf("annotation %s=%q: %w", faultAnnotation, query, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.DebugURL("/debug/fault?"+query), nil)
	if err != nil {
		return err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT /debug/fault?%s: %s %s", query, resp.Status, body)
	}
	return nil
}

// endpoints are the pods a Service would send to now.
func (f *fleet) endpoints() []*podProcess {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*podProcess
	for _, p := range f.pods {
		if p.serving {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *podProcess) int { return strings.Compare(a.pod, b.pod) })
	return out
}

// byHash counts the serving pods per rollouts-pod-template-hash.
func (f *fleet) byHash() map[string]int {
	out := map[string]int{}
	for _, p := range f.endpoints() {
		out[p.hash]++
	}
	return out
}

func (f *fleet) stop() {
	select {
	case <-f.done:
		return
	default:
	}
	close(f.done)
	f.loop.Wait()
	f.mu.Lock()
	for _, p := range f.pods {
		f.stops.Go(func() { p.proc.Stop(10 * time.Second) })
	}
	f.pods = map[string]*podProcess{}
	f.mu.Unlock()
	f.stops.Wait()
}

// result is one request as the client saw it.
type result struct {
	at     time.Time // when it was sent
	hash   string    // the pod template hash of the pod it went to
	status int       // 0: a transport error
	took   time.Duration
}

// load sends POST /predict at a steady rate, each request to a pod picked
// uniformly among the fleet's endpoints (kube-proxy's spread), and records
// every outcome.
type load struct {
	mu      sync.Mutex
	results []result
	noPod   atomic.Int64 // ticks with no endpoint at all
	stop    chan struct{}
	wg      sync.WaitGroup
}

var texts = []string{
	`{"text":"The battery is great but the screen is dim"}`,
	`{"text":"I love this phone"}`,
	`{"text":"Terrible support, never again"}`,
	`{"text":"The box is blue"}`,
}

// requestRate is the traffic of every scenario but the one without traffic.
const requestRate = 50

func startLoad(t *testing.T, f *fleet, perSecond int) *load {
	l := &load{stop: make(chan struct{})}
	const workers = 8
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	tokens := make(chan int, workers)
	l.wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		defer close(tokens)
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
				select {
				case tokens <- i:
				default: // every worker busy: drop the tick, keep the pace
				}
			}
		}
	})
	for range workers {
		l.wg.Go(func() {
			for i := range tokens {
				eps := f.endpoints()
				if len(eps) == 0 {
					l.noPod.Add(1)
					continue
				}
				p := eps[rand.IntN(len(eps))]
				r := result{at: time.Now(), hash: p.hash}
				resp, err := client.Post(p.base+"/predict", "application/json", strings.NewReader(texts[i%len(texts)]))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					r.status = resp.StatusCode
				}
				r.took = time.Since(r.at)
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// tally counts requests per hash between from and to (sent times).
type tally struct {
	requests, ok, failed int // failed: 5xx or transport error
}

func (l *load) count(from, to time.Time) map[string]tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]tally{}
	for _, r := range l.results {
		if r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		c := out[r.hash]
		c.requests++
		if r.status == http.StatusOK {
			c.ok++
		} else if r.status == 0 || r.status >= 500 {
			c.failed++
		}
		out[r.hash] = c
	}
	return out
}

// lastRequest is when the last request to hash was sent (zero if none).
func (l *load) lastRequest(hash string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.results) - 1; i >= 0; i-- {
		if l.results[i].hash == hash {
			return l.results[i].at
		}
	}
	return time.Time{}
}

func (t tally) String() string {
	return fmt.Sprintf("%d requests, %d ok, %d failed", t.requests, t.ok, t.failed)
}
