// Command loadbench measures ml-inference over real HTTP next to a baseline
// in the same run, so the ratio means something on a noisy machine:
//
//   - the baseline is a bare net/http server doing the same JSON decode and
//     encode (test/loadbench/baseline), run as its own process;
//   - ml-inference with telemetry on, as shipped: metrics, access logs to a
//     file, 10% trace sampling exported over OTLP/HTTP to a local sink;
//   - the same with 100% sampling (always_on);
//   - ml-inference with telemetry off: no access log, no traces (metrics
//     stay, as they cannot be turned off);
//   - wrk drives all of them at the same connection count, rounds alternating.
//
// The sink decodes what it receives far enough to count the spans, so the
// report says how many spans each configuration really exported. It also
// measures start-to-ready and peak RSS under load. `make bench` runs it.
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ml-platform/platform/internal/inferencetest"
	"github.com/ml-platform/platform/test/loadbench/baseline"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "baseline" {
		// Child mode: serve the baseline handler on the given address.
		srv := &http.Server{Addr: os.Args[2], Handler: baselineMux(), ReadHeaderTimeout: 5 * time.Second}
		if err := srv.ListenAndServe(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

func baselineMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /predict", baseline.Handler())
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	return mux
}

type config struct {
	serverBin   string
	modelsDir   string
	duration    time.Duration
	warmup      time.Duration
	connections int
	threads     int
	rounds      int
	startups    int
}

type target struct {
	name     string
	args     []string
	env      []string
	bin      string
	baseline bool // the bare net/http baseline (this program in child mode), not ml-inference
}

type result struct {
	rps, p50, p90, p99 float64 // requests/s, latencies in ms
	non2xx, errors     int
	peakRSS            int64 // bytes
	// requests is every request wrk sent to the process (warm-up included);
	// spans and batches are what the OTLP sink received from it.
	requests, spans, batches int64
}

func run(args []string) error {
	var c config
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.StringVar(&c.serverBin, "server", "bin/ml-inference", "ml-inference binary")
	fs.StringVar(&c.modelsDir, "models-dir", "models", "models directory")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured load per round")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before each round")
	fs.IntVar(&c.connections, "connections", 32, "concurrent connections")
	fs.IntVar(&c.threads, "threads", 2, "wrk threads")
	fs.IntVar(&c.rounds, "rounds", 2, "alternating rounds per target")
	fs.IntVar(&c.startups, "startups", 5, "start-to-ready measurements")
	if err := fs.Parse(args); err != nil {
		return err
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk not found; hack/bench.sh installs it (apt-get install wrk)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "loadbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	script := filepath.Join(tmp, "post.lua")
	os.WriteFile(script, []byte(`wrk.method = "POST"
wrk.body = '{"text":"The battery life is great but the screen is not bright! :)"}'
wrk.headers["Content-Type"] = "application/json"
`), 0o644)

	sink, err := startSink()
	if err != nil {
		return err
	}
	defer sink.Close()
	otlp := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + sink.ln.Addr().String(), "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}
	// Index 1 is ml-inference as shipped (the targets below are checked on
	// it); 1 to 3 are the telemetry comparison, 3 being "off".
	targets := []target{
		{name: "bare net/http baseline", bin: self, baseline: true},
		{name: "ml-inference, telemetry on: access log, 10% traces (shipped)", bin: c.serverBin,
			args: []string{"--models-dir", c.modelsDir}, env: otlp},
		{name: "ml-inference, telemetry on: access log, 100% traces", bin: c.serverBin,
			args: []string{"--models-dir", c.modelsDir}, env: append(slices.Clone(otlp), "OTEL_TRACES_SAMPLER=always_on")},
		{name: "ml-inference, telemetry off: no access log, no traces", bin: c.serverBin,
			args: []string{"--models-dir", c.modelsDir, "--log-level", "error"}, env: []string{"OTEL_TRACES_SAMPLER=always_off", "OTEL_TRACES_EXPORTER=none"}},
	}
	const shipped, off = 1, 3
	fmt.Printf("loadbench: wrk %d connections, %d threads, %v per round (+%v warm-up), %d rounds alternating, GOMAXPROCS default, %d CPUs\n\n",
		c.connections, c.threads, c.duration, c.warmup, c.rounds, numCPU())

	results := make([][]result, len(targets))
	for round := range c.rounds {
		for i, t := range targets {
			r, err := loadRound(c, wrk, script, tmp, t, sink)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", t.name, round+1, err)
			}
			results[i] = append(results[i], r)
			fmt.Printf("  round %d %-62s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  RSS %5.1f MiB\n", round+1, t.name, r.rps, r.p50, r.p99, mib(r.peakRSS))
		}
	}
	fmt.Println()
	startup, err := startToReady(c, targets[shipped])
	if err != nil {
		return err
	}

	base := mean(results[0])
	fmt.Printf("%-62s %10s %8s %8s %8s %9s %7s\n", "server (mean of rounds)", "req/s", "p50 ms", "p90 ms", "p99 ms", "peak RSS", "ratio")
	for i, t := range targets {
		m := mean(results[i])
		fmt.Printf("%-62s %10.0f %8.2f %8.2f %8.2f %6.1f MiB %6.2fx\n", t.name, m.rps, m.p50, m.p90, m.p99, mib(m.peakRSS), m.rps/base.rps)
		if err := checkFailures(t.name, m); err != nil {
			return err
		}
	}
	fmt.Printf("\ntelemetry cost (ml-inference, this run; metrics on in all; on / off):\n")
	offMean := mean(results[off])
	for i := shipped; i < off; i++ {
		m := mean(results[i])
		fmt.Printf("  %-62s throughput %5.2fx  p50 %+6.2f ms  p99 %+6.2f ms  spans received %d in %d batches (%.2f per request)\n",
			targets[i].name, m.rps/offMean.rps, m.p50-offMean.p50, m.p99-offMean.p99, m.spans, m.batches, perRequest(m))
	}
	if sink.malformed.Load() > 0 {
		return fmt.Errorf("the OTLP sink could not decode %d export requests", sink.malformed.Load())
	}
	ml := mean(results[shipped])
	fmt.Printf("\nstart to ready (median of %d): %.1f ms\n\n", c.startups, startup)
	fmt.Println("targets (2 cores, telemetry as shipped):")
	check("throughput >= 0.75x baseline", ml.rps/base.rps >= 0.75, fmt.Sprintf("%.2fx", ml.rps/base.rps))
	check("p99 <= 10 ms at 32 connections", ml.p99 <= 10, fmt.Sprintf("%.2f ms", ml.p99))
	check("RSS <= 40 MiB under load", mib(ml.peakRSS) <= 40, fmt.Sprintf("%.1f MiB", mib(ml.peakRSS)))
	check("start to ready <= 200 ms", startup <= 200, fmt.Sprintf("%.1f ms", startup))
	return nil
}

func check(what string, ok bool, got string) {
	mark := "met"
	if !ok {
		mark = "MISSED"
	}
	fmt.Printf("  %-34s %-7s (%s)\n", what, mark, got)
}

// loadRound starts the target, warms it up, measures one wrk run while
// sampling RSS, and stops it. Spans the sink received from start to exit
// (ml-inference flushes on the way out) are the target's.
func loadRound(c config, wrk, script, tmp string, t target, sink *sink) (r result, err error) {
	spans0, batches0 := sink.spans.Load(), sink.batches.Load()
	p, addr, err := startTarget(t, tmp)
	if err != nil {
		return result{}, err
	}
	var warm result
	defer func() {
		p.stop()
		r.requests += warm.requests
		r.spans, r.batches = sink.spans.Load()-spans0, sink.batches.Load()-batches0
	}()
	url := "http://" + addr + "/predict"
	if c.warmup > 0 {
		if warm, err = runWrk(wrk, script, url, c.threads, c.connections, c.warmup); err != nil {
			return result{}, err
		}
	}
	var peak atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss := readRSS(p.pid); rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	r, err = runWrk(wrk, script, url, c.threads, c.connections, c.duration)
	cancel()
	r.peakRSS = peak.Load()
	return r, err
}

// running is a started target: its pid (for RSS) and how to stop it.
type running struct {
	pid  int
	stop func()
}

// startTarget starts the target and waits until /ready answers 200.
// ml-inference is started the one way tests start it (internal/inferencetest),
// with the shipped log flush interval; the baseline is this program re-run in
// its child mode.
func startTarget(t target, tmp string) (running, string, error) {
	logFile := filepath.Join(tmp, "server.log")
	addr, err := freeAddr()
	if err != nil {
		return running{}, "", err
	}
	if !t.baseline {
		// A fixed port: the "telemetry off" target logs at error level only,
		// so its address cannot be read from a "listening" line.
		p, err := inferencetest.Start(inferencetest.Options{
			Binary: t.bin, Args: append([]string{"--addr", addr, "--log-flush-interval", "100ms"}, t.args...), Env: t.env, LogFile: logFile,
		})
		if err != nil {
			return running{}, "", err
		}
		stop := func() { p.Stop(5 * time.Second) }
		if err := waitReady(p.Addr, 10*time.Second); err != nil {
			stop()
			return running{}, "", err
		}
		return running{p.Pid(), stop}, p.Addr, nil
	}
	cmd := exec.Command(t.bin, "baseline", addr)
	out, err := os.Create(logFile)
	if err != nil {
		return running{}, "", err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return running{}, "", err
	}
	out.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	if err := waitReady(addr, 10*time.Second); err != nil {
		stop()
		return running{}, "", err
	}
	return running{cmd.Process.Pid, stop}, addr, nil
}

func waitReady(addr string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + addr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v", addr, limit)
}

// startToReady is the median time from exec to the first 200 from /ready.
func startToReady(c config, t target) (float64, error) {
	tmp, err := os.MkdirTemp("", "loadbench-start")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	var ms []float64
	for range c.startups {
		t0 := time.Now()
		p, _, err := startTarget(t, tmp)
		if err != nil {
			return 0, err
		}
		ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		p.stop()
	}
	slices.Sort(ms)
	return ms[len(ms)/2], nil
}

var (
	rpsRe     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	totalRe   = regexp.MustCompile(`(\d+) requests in `)
	latRe     = regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	non2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	sockErrRe = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func runWrk(wrk, script, url string, threads, conns int, d time.Duration) (result, error) {
	out, err := exec.Command(wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--latency", "-s", script, url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return parseWrk(out)
}

// parseWrk reads wrk's report: requests/s, latency percentiles (in ms) and
// every kind of failure it counts.
func parseWrk(out []byte) (result, error) {
	var r result
	m := rpsRe.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("cannot parse wrk output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := totalRe.FindSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	for _, l := range latRe.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(l[2]), 64)
		switch string(l[3]) {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		switch string(l[1]) {
		case "50":
			r.p50 = v
		case "90":
			r.p90 = v
		case "99":
			r.p99 = v
		}
	}
	if m := non2xxRe.FindSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(string(m[1]))
	}
	if m := sockErrRe.FindSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.Atoi(string(g))
			r.errors += n
		}
	}
	return r, nil
}

// checkFailures turns failed requests into an error: a throughput figure
// that includes errors means nothing.
func checkFailures(name string, r result) error {
	if r.non2xx > 0 || r.errors > 0 {
		return fmt.Errorf("%s: %d non-2xx responses, %d socket errors", name, r.non2xx, r.errors)
	}
	return nil
}

func mean(rs []result) result {
	var m result
	for _, r := range rs {
		m.rps += r.rps / float64(len(rs))
		m.p50 += r.p50 / float64(len(rs))
		m.p90 += r.p90 / float64(len(rs))
		m.p99 += r.p99 / float64(len(rs))
		m.non2xx += r.non2xx
		m.errors += r.errors
		m.peakRSS = max(m.peakRSS, r.peakRSS)
		m.requests += r.requests
		m.spans += r.spans
		m.batches += r.batches
	}
	return m
}

// perRequest is spans received per request sent, over all rounds: 4 (server
// span and three stages) times the share sampled, less what was dropped.
func perRequest(m result) float64 {
	if m.requests == 0 {
		return 0
	}
	return float64(m.spans) / float64(m.requests)
}

// sink accepts OTLP/HTTP trace exports, counts their spans and discards
// them, so the exporter's real cost (batching, protobuf encoding, HTTP) is
// paid and what arrived can be reported.
type sink struct {
	ln                        net.Listener
	spans, batches, malformed atomic.Int64
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln}
	go http.Serve(ln, http.HandlerFunc(s.serve))
	return s, nil
}

func (s *sink) Close() error { return s.ln.Close() }

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			s.malformed.Add(1)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	n, perr := countSpans(data)
	if err != nil || perr != nil {
		s.malformed.Add(1)
		http.Error(w, "cannot decode the export request", http.StatusBadRequest)
		return
	}
	s.spans.Add(int64(n))
	s.batches.Add(1)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// countSpans counts the spans in an OTLP ExportTraceServiceRequest in
// protobuf wire format: resource_spans (field 1) -> scope_spans (field 2) ->
// spans (field 2). Everything else is skipped.
func countSpans(req []byte) (int, error) {
	n := 0
	err := eachField(req, func(num int, rs []byte) error {
		if num != 1 {
			return nil
		}
		return eachField(rs, func(num int, ss []byte) error {
			if num != 2 {
				return nil
			}
			return eachField(ss, func(num int, _ []byte) error {
				if num == 2 {
					n++
				}
				return nil
			})
		})
	})
	return n, err
}

// eachField walks one protobuf message and calls fn with the field number
// and contents of each length-delimited field; other wire types are skipped.
func eachField(b []byte, fn func(num int, val []byte) error) error {
	for len(b) > 0 {
		key, k := binary.Uvarint(b)
		if k <= 0 {
			return errors.New("protobuf: bad field key")
		}
		b = b[k:]
		num, wire := int(key>>3), key&7
		switch wire {
		case 0: // varint
			_, k := binary.Uvarint(b)
			if k <= 0 {
				return errors.New("protobuf: bad varint")
			}
			b = b[k:]
		case 1: // fixed64
			if len(b) < 8 {
				return errors.New("protobuf: short fixed64")
			}
			b = b[8:]
		case 5: // fixed32
			if len(b) < 4 {
				return errors.New("protobuf: short fixed32")
			}
			b = b[4:]
		case 2: // length-delimited
			l, k := binary.Uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return errors.New("protobuf: bad length")
			}
			if err := fn(num, b[k:k+int(l)]); err != nil {
				return err
			}
			b = b[k+int(l):]
		default:
			return fmt.Errorf("protobuf: unsupported wire type %d", wire)
		}
	}
	return nil
}

func readRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "processor\t:")
}
