package testcluster

// TB is the part of testing.TB that StartForTest uses.
type TB interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// StartForTest starts a cluster for a test, the one way suites should: it
// fails the test if Start fails, logs the start timings, and when the test
// ends stops the cluster, first logging the last lines of every
// component's log if the test failed.
func StartForTest(t TB, o Options) *Cluster {
	t.Helper()
	c, err := Start(o)
	if err != nil {
		t.Fatalf("start test cluster: %v", err)
	}
	t.Logf("test cluster up in %v: %v", c.Started, c.Timings)
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range c.Components() {
				t.Logf("last lines of %s:\n%s", name, c.Logs(name, 30))
			}
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop test cluster: %v", err)
		}
	})
	return c
}
