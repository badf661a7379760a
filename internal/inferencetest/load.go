package inferencetest

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load keeps POST /predict requests going to one process until Stop, as a
// few clients without think time, and records which version (the
// X-Model-Version header) answered when: the one way tests put a server
// under load while something changes (a reload, a rollback, a registry
// outage) and check that no request failed.
type Load struct {
	p      *Process
	stop   chan struct{}
	wg     sync.WaitGroup
	sent   atomic.Int64
	failed atomic.Int64
	first  atomic.Value // string: the first failure

	mu     sync.Mutex
	served []Served // in order of arrival
}

// Served is one answer: when it arrived and the version that gave it.
type Served struct {
	At      time.Time
	Version string
}

// LoadResult is what a load saw.
type LoadResult struct {
	Sent, Failed int64
	FirstFailure string // "" when none failed
}

// StartLoad starts clients that each post /predict, then wait pause, until
// Stop.
func StartLoad(p *Process, clients int, pause time.Duration) *Load {
	l := &Load{p: p, stop: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	for range clients {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.once(client)
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		})
	}
	return l
}

func (l *Load) once(client *http.Client) {
	l.sent.Add(1)
	resp, err := client.Post(l.p.URL("/predict"), "application/json", strings.NewReader(`{"text":"a great day"}`))
	if err != nil {
		l.fail(err.Error())
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		l.fail(resp.Status)
		return
	}
	at := time.Now()
	l.mu.Lock()
	l.served = append(l.served, Served{At: at, Version: resp.Header.Get("X-Model-Version")})
	l.mu.Unlock()
}

func (l *Load) fail(why string) {
	l.failed.Add(1)
	l.first.CompareAndSwap(nil, why)
}

// FirstServedBy is the arrival of the first answer from version at or after
// since.
func (l *Load) FirstServedBy(version string, since time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.served {
		if s.Version == version && !s.At.Before(since) {
			return s.At, true
		}
	}
	return time.Time{}, false
}

// ServedSince lists the versions that answered at or after since, in order
// of first appearance.
func (l *Load) ServedSince(since time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, s := range l.served {
		if !s.At.Before(since) && !seen[s.Version] {
			seen[s.Version] = true
			out = append(out, s.Version)
		}
	}
	return out
}

// Stop ends the clients and reports; it may be called more than once.
func (l *Load) Stop() LoadResult {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	first, _ := l.first.Load().(string)
	return LoadResult{Sent: l.sent.Load(), Failed: l.failed.Load(), FirstFailure: first}
}
