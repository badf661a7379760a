// Package testcluster starts a real Kubernetes control plane on loopback for
// verification and tests: kube-apiserver and etcd built from pinned modules
// (tools/, hack/tools.sh), started by controller-runtime's envtest, with CRDs
// from pinned upstream modules installed.
//
// By Options it grows into a simulated cluster, the same way for every suite:
// kube-controller-manager and kube-scheduler of the same Kubernetes release,
// fake Nodes of a declared shape whose kubelets kwok plays (pods become
// Running and Ready, no container runs), and the Argo Rollouts controller.
// Every process logs to a file in the cluster's directory (Logs), and Stop
// leaves none behind.
//
// A suite starts what it needs and waits on its workloads:
//
//	c := testcluster.StartForTest(t, testcluster.Options{
//		CRDDirs:           dirs, // hack/tools.sh crds: the Rollouts CRDs among them
//		ControllerManager: true,
//		Scheduler:         true,
//		Nodes:             testcluster.ProductionNodes(), // or KindNodes(), or your own
//		Rollouts:          true,
//	})
//	// apply objects with c.Client (or anything that reads c.Kubeconfig), then
//	err := c.WaitReady(ctx, testcluster.Workload{Kind: "Deployment", Namespace: "ns", Name: "web"})
//
// The binaries come from environment variables that hack/test.sh exports
// (see the *Env constants); a missing one is an error naming the
// hack/tools.sh command that builds it.
package testcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ml-platform/platform/internal/testtools"
)

// AssetsEnv names the directory holding kube-apiserver and etcd, as envtest
// expects; `hack/tools.sh kubebuilder-assets` prints it.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Environment variables naming the other binaries (`hack/tools.sh path
// TOOL`) and kwok's stage directories (`hack/tools.sh kwok-stages`, joined
// by ':'); hack/test.sh exports them.
const (
	ControllerManagerEnv = "KUBE_CONTROLLER_MANAGER_BIN"
	SchedulerEnv         = "KUBE_SCHEDULER_BIN"
	KwokEnv              = "KWOK_BIN"
	KwokStagesEnv        = "KWOK_STAGE_DIRS"
	RolloutsEnv          = "ROLLOUTS_CONTROLLER_BIN"
)

// Component names, for Logs and Timings.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Kwok              = "kwok"
	Rollouts          = "rollouts-controller"
)

// Options configure the cluster. The zero value is the API server alone.
// Workloads get pods from ControllerManager, and those pods become ready
// with Scheduler and Nodes as well.
type Options struct {
	// AssetsDir holds kube-apiserver and etcd ("" reads $KUBEBUILDER_ASSETS).
	AssetsDir string
	// CRDDirs are directories of CRD manifests to install before returning.
	CRDDirs []string
	// Dir receives the admin kubeconfig and one log file per process. ""
	// makes a temporary directory that Stop removes.
	Dir string

	// ControllerManager runs kube-controller-manager: Deployments get
	// ReplicaSets and pods, namespaces get their default ServiceAccount, and
	// kube-apiserver's ServiceAccount admission is switched on as in a real
	// cluster (a pod naming a missing ServiceAccount is refused).
	ControllerManager bool
	// Scheduler runs kube-scheduler, which binds pods to Nodes.
	Scheduler bool
	// Nodes are fake Nodes to create; non-empty runs kwok for them.
	Nodes []Node
	// Rollouts runs the Argo Rollouts controller; CRDDirs must hold its CRDs.
	Rollouts bool
	// RolloutsNamespace confines the Rollouts controller to one namespace
	// ("" = cluster-wide).
	RolloutsNamespace string

	// Bins overrides the binaries' environment variables.
	Bins Binaries
	// KwokStageDirs are directories of kwok Stage files (nil reads
	// $KWOK_STAGE_DIRS).
	KwokStageDirs []string
	// StartTimeout bounds the wait for every component to be ready (default
	// 90 s); StopGrace is how long a process may take to exit on SIGTERM
	// before it is killed (default 10 s).
	StartTimeout time.Duration
	StopGrace    time.Duration
}

// Binaries are paths of the components' binaries; "" reads the variable
// named in the comment.
type Binaries struct {
	ControllerManager string // $KUBE_CONTROLLER_MANAGER_BIN
	Scheduler         string // $KUBE_SCHEDULER_BIN
	Kwok              string // $KWOK_BIN
	Rollouts          string // $ROLLOUTS_CONTROLLER_BIN
}

// Timing is how long one component took to start and be ready; the
// kube-apiserver's includes etcd and the CRDs' installation, the others run
// at once after it.
type Timing struct {
	Component string
	Took      time.Duration
}

func (t Timing) String() string { return t.Component + " " + t.Took.Round(time.Millisecond).String() }

// Cluster is a running control plane and the components Options asked for.
type Cluster struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Client is a controller-runtime client with Config and the client-go
	// scheme; unstructured objects reach custom resources (Rollouts).
	Client client.Client
	// Kubeconfig is the path of an admin kubeconfig file, the one the
	// components use.
	Kubeconfig string
	// Dir holds the kubeconfig and the logs.
	Dir string
	// RolloutsMetrics is the Argo Rollouts controller's /metrics URL ("" without
	// the Rollouts option).
	RolloutsMetrics string
	// Started is how long Start took in all; Timings per component.
	Started time.Duration
	Timings []Timing
	CRDs    int

	env    *envtest.Environment
	procs  []*process
	logs   map[string]string // component -> log file
	files  []*os.File        // envtest's log files
	ownDir bool
	grace  time.Duration
	once   sync.Once
	err    error
}

// Start launches etcd and kube-apiserver on free loopback ports, installs
// the CRDs, then starts the components Options ask for and waits until each
// is ready. On error nothing is left running. Stop it when done.
func Start(o Options) (*Cluster, error) {
	start := time.Now()
	assets := o.AssetsDir
	if assets == "" {
		assets = os.Getenv(AssetsEnv)
	}
	if assets == "" {
		return nil, fmt.Errorf("%s is not set: run `make test`, or export %s=$(hack/tools.sh kubebuilder-assets)", AssetsEnv, AssetsEnv)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("%s=%s has no %s: run hack/tools.sh kubebuilder-assets", AssetsEnv, assets, bin)
		}
	}
	bins, stages, err := o.resolve()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: o.Dir, logs: map[string]string{}, grace: o.StopGrace}
	if c.grace == 0 {
		c.grace = 10 * time.Second
	}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "testcluster-"); err != nil {
			return nil, fmt.Errorf("cluster directory: %w", err)
		}
		c.ownDir = true
	} else if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	if err := c.startControlPlane(assets, o); err != nil {
		c.Stop()
		return nil, err
	}
	c.Timings = append(c.Timings, Timing{APIServer, time.Since(start)})

	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.startComponents(ctx, o, bins, stages); err != nil {
		c.Stop()
		return nil, err
	}
	c.Started = time.Since(start)
	return c, nil
}

// resolve finds the binaries and stage files the options need.
func (o Options) resolve() (Binaries, []string, error) {
	b := o.Bins
	var errs []error
	need := func(path *string, want bool, env, tool string) {
		if !want || *path != "" {
			return
		}
		p, err := testtools.Path(env, tool)
		errs = append(errs, err)
		*path = p
	}
	need(&b.ControllerManager, o.ControllerManager, ControllerManagerEnv, "kube-controller-manager")
	need(&b.Scheduler, o.Scheduler, SchedulerEnv, "kube-scheduler")
	need(&b.Kwok, len(o.Nodes) > 0, KwokEnv, "kwok")
	need(&b.Rollouts, o.Rollouts, RolloutsEnv, "rollouts-controller")
	var stages []string
	if len(o.Nodes) > 0 {
		dirs := o.KwokStageDirs
		if dirs == nil {
			dirs = filepath.SplitList(os.Getenv(KwokStagesEnv))
		}
		if len(dirs) == 0 {
			errs = append(errs, fmt.Errorf("%s is not set: run `make test`, or export %s=\"$(hack/tools.sh kwok-stages | paste -sd: -)\"", KwokStagesEnv, KwokStagesEnv))
		}
		for _, d := range dirs {
			files, err := stageFiles(d)
			errs = append(errs, err)
			stages = append(stages, files...)
		}
	}
	return b, stages, errors.Join(errs...)
}

// stageFiles lists the kwok Stage files of a stage directory: every YAML
// file but the kustomization that groups them.
func stageFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "kustomization.yaml" })
	if len(files) == 0 {
		return nil, fmt.Errorf("kwok stage directory %s has no stage file: run hack/tools.sh kwok-stages", dir)
	}
	return files, nil
}

// startControlPlane starts etcd and kube-apiserver with envtest, writes the
// admin kubeconfig and builds the client.
func (c *Cluster) startControlPlane(assets string, o Options) error {
	etcdLog, err := c.logFile(Etcd)
	if err != nil {
		return err
	}
	apiLog, err := c.logFile(APIServer)
	if err != nil {
		return err
	}
	api := &envtest.APIServer{Out: apiLog, Err: apiLog}
	if o.ControllerManager {
		// envtest disables ServiceAccount admission because nothing creates
		// the default ServiceAccounts; kube-controller-manager does.
		api.Configure().Set("disable-admission-plugins", "")
	}
	c.env = &envtest.Environment{
		ControlPlane:             envtest.ControlPlane{APIServer: api, Etcd: &envtest.Etcd{Out: etcdLog, Err: etcdLog}},
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        o.CRDDirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cfg, err := c.env.Start()
	if err != nil {
		return fmt.Errorf("start kube-apiserver and etcd: %w; last lines of %s:\n%s", err, apiLog.Name(), tail(apiLog.Name(), 20))
	}
	c.Config = cfg
	c.CRDs = len(c.env.CRDs)
	if o.Rollouts && !c.hasCRD("rollouts.argoproj.io") {
		return errors.New("option Rollouts needs the Argo Rollouts CRDs: add their directory to CRDDirs (hack/tools.sh crds)")
	}
	// One admin identity for every component, as the brief of a test
	// cluster goes: what runs here is trusted, what is tested is the
	// workloads.
	admin, err := c.env.ControlPlane.AddUser(envtest.User{Name: "testcluster-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if c.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// hasCRD reports whether Start installed the named CRD.
func (c *Cluster) hasCRD(name string) bool {
	for _, crd := range c.env.CRDs {
		if crd.Name == name {
			return true
		}
	}
	return false
}

// logFile creates the log file of an envtest process; Stop closes it.
func (c *Cluster) logFile(name string) (*os.File, error) {
	path := filepath.Join(c.Dir, name+".log")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", name, err)
	}
	c.logs[name] = path
	c.files = append(c.files, f)
	return f, nil
}

// component is one process to start and the check that says it is ready.
type component struct {
	name  string
	bin   string
	args  []string
	env   []string
	what  string // what ready means, for errors
	ready func(context.Context) (bool, error)
	setup func(context.Context) error // before the wait (e.g. create Nodes)
}

// startComponents starts every requested process at once, then waits for
// each to be ready.
func (c *Cluster) startComponents(ctx context.Context, o Options, bins Binaries, stages []string) error {
	comps, err := c.components(o, bins, stages)
	if err != nil {
		return err
	}
	type started struct {
		comp component
		proc *process
		at   time.Time
	}
	var run []started
	for _, comp := range comps {
		at := time.Now()
		p, err := startProcess(c.Dir, comp.name, comp.bin, comp.args, comp.env)
		if err != nil {
			return err
		}
		c.procs = append(c.procs, p)
		c.logs[comp.name] = p.log.Name()
		run = append(run, started{comp, p, at})
	}
	errs := make([]error, len(run))
	took := make([]time.Duration, len(run))
	var wg sync.WaitGroup
	for i, s := range run {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.comp.setup != nil {
				if err := s.comp.setup(ctx); err != nil {
					errs[i] = fmt.Errorf("%s: %w", s.comp.name, err)
					return
				}
			}
			errs[i] = s.proc.waitUntil(ctx, s.comp.what, s.comp.ready)
			took[i] = time.Since(s.at)
		}()
	}
	wg.Wait()
	for i, s := range run {
		c.Timings = append(c.Timings, Timing{s.comp.name, took[i]})
	}
	return errors.Join(errs...)
}

// components builds the command line and readiness check of each process.
func (c *Cluster) components(o Options, bins Binaries, stages []string) ([]component, error) {
	var comps []component
	if o.ControllerManager {
		comps = append(comps, component{
			name: ControllerManager,
			bin:  bins.ControllerManager,
			args: []string{
				"--kubeconfig=" + c.Kubeconfig,
				// Every controller but the legacy token one: it needs the
				// service-account signing key, and pods get projected tokens
				// nobody reads here (kwok runs no container). csrsigning
				// skips itself without --cluster-signing-* files.
				"--controllers=*,-serviceaccount-token",
				"--secure-port=0",
				"--leader-elect=false",
				"--kube-api-qps=100", "--kube-api-burst=200",
				"--v=2",
			},
			// Its secure port is off, so no healthz: the ServiceAccount
			// controller creating default/default proves it is up and
			// reconciling.
			what: "reconciling (no ServiceAccount default/default)",
			ready: func(ctx context.Context) (bool, error) {
				var sa corev1.ServiceAccount
				err := c.Client.Get(ctx, types.NamespacedName{Namespace: "default", Name: "default"}, &sa)
				return err == nil, err
			},
		})
	}
	// Probes of loopback health endpoints: the scheduler serves a
	// self-signed certificate made at start.
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health probe
	if o.Scheduler {
		port, err := freePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		comps = append(comps, component{
			name: Scheduler,
			bin:  bins.Scheduler,
			// No --authentication/authorization-kubeconfig: /readyz is
			// always allowed, and with them it logs errors about the
			// request-header CA that envtest's API server does not set.
			args: []string{
				"--kubeconfig=" + c.Kubeconfig,
				"--leader-elect=false",
				"--bind-address=127.0.0.1",
				"--secure-port=" + strconv.Itoa(port),
				"--cert-dir=" + filepath.Join(c.Dir, "kube-scheduler-certs"),
				"--v=2",
			},
			what:  "ready (/readyz)",
			ready: httpOK(probe, fmt.Sprintf("https://127.0.0.1:%d/readyz", port)),
		})
	}
	if len(o.Nodes) > 0 {
		port, err := freePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		home := filepath.Join(c.Dir, "kwok-home")
		if err := os.MkdirAll(home, 0o755); err != nil {
			return nil, err
		}
		args := []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--manage-all-nodes=true",
			"--server-address=127.0.0.1:" + strconv.Itoa(port),
		}
		for _, s := range stages {
			args = append(args, "--config="+s)
		}
		names := make([]string, len(o.Nodes))
		for i, n := range o.Nodes {
			names[i] = n.Name
		}
		healthy := httpOK(probe, fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		comps = append(comps, component{
			name: Kwok,
			bin:  bins.Kwok,
			args: args,
			// kwok also reads ~/.kwok/kwok.yaml when it exists: a HOME of
			// its own keeps a developer's file out.
			env:   []string{"HOME=" + home},
			what:  "serving with every Node Ready",
			setup: func(ctx context.Context) error { return createNodes(ctx, c.Client, o.Nodes) },
			ready: func(ctx context.Context) (bool, error) {
				if ok, err := healthy(ctx); !ok {
					return false, err
				}
				return nodesReady(ctx, c.Client, names)
			},
		})
	}
	if o.Rollouts {
		metrics, err := freePort("")
		if err != nil {
			return nil, err
		}
		health, err := freePort("")
		if err != nil {
			return nil, err
		}
		args := []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--leader-elect=false",
			// It listens on every interface (no flag for the address), so
			// the ports are free on every interface.
			"--metricsPort=" + strconv.Itoa(metrics),
			"--healthzPort=" + strconv.Itoa(health),
		}
		if o.RolloutsNamespace != "" {
			args = append(args, "--namespaced", "--namespace="+o.RolloutsNamespace)
		}
		c.RolloutsMetrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)
		comps = append(comps, component{
			name: Rollouts,
			bin:  bins.Rollouts,
			args: args,
			// healthz answers once the controller runs; objects created
			// before its informers sync are reconciled when they do.
			what:  "healthy (/healthz)",
			ready: httpOK(probe, fmt.Sprintf("http://127.0.0.1:%d/healthz", health)),
		})
	}
	return comps, nil
}

// Logs returns the last n lines of a component's log (Etcd, APIServer,
// ControllerManager, Scheduler, Kwok, Rollouts), for a failing test to show.
func (c *Cluster) Logs(component string, n int) string {
	path, ok := c.logs[component]
	if !ok {
		known := make([]string, 0, len(c.logs))
		for k := range c.logs {
			known = append(known, k)
		}
		slices.Sort(known)
		return fmt.Sprintf("(no log for %q: this cluster has %s)", component, strings.Join(known, ", "))
	}
	return tail(path, n)
}

// Components are the names of the cluster's components that have logs, in
// start order.
func (c *Cluster) Components() []string {
	names := []string{Etcd, APIServer}
	for _, p := range c.procs {
		names = append(names, p.name)
	}
	return names
}

// PIDs are the process ids of the components Start ran itself (envtest
// runs etcd and kube-apiserver); each leads a process group of its own.
func (c *Cluster) PIDs() map[string]int {
	pids := map[string]int{}
	for _, p := range c.procs {
		pids[p.name] = p.cmd.Process.Pid
	}
	return pids
}

// Stop stops every component (SIGTERM, then SIGKILL after the grace
// period), then the control plane, and removes the cluster's directory if
// Start made it. It is safe to call more than once.
func (c *Cluster) Stop() error {
	if c == nil {
		return errors.New("cluster not started")
	}
	c.once.Do(func() {
		var wg sync.WaitGroup
		for _, p := range c.procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.stop(c.grace)
			}()
		}
		wg.Wait()
		c.err = c.survivors()
		if c.env != nil {
			if err := c.env.Stop(); err != nil {
				c.err = errors.Join(c.err, fmt.Errorf("stop kube-apiserver and etcd: %w", err))
			}
		}
		for _, f := range c.files {
			f.Close()
		}
		if c.ownDir {
			if err := os.RemoveAll(c.Dir); err != nil {
				c.err = errors.Join(c.err, err)
			}
		}
	})
	return c.err
}

// survivors checks that no process is left in the components' process
// groups. A killed process vanishes from its group once reaped, which the
// kernel does asynchronously for the leader's children: allow a moment.
func (c *Cluster) survivors() error {
	deadline := time.Now().Add(2 * time.Second)
	var left []string
	for {
		left = left[:0]
		for _, p := range c.procs {
			pgid := p.cmd.Process.Pid
			if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
				left = append(left, fmt.Sprintf("%s (process group %d)", p.name, pgid))
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(left) > 0 {
		return fmt.Errorf("processes survived Stop: %s", strings.Join(left, ", "))
	}
	return nil
}
