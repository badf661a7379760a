// Package testcluster starts a real Kubernetes control plane on loopback for
// verification and tests: kube-apiserver and etcd built from pinned modules
// (tools/, hack/tools.sh), started by controller-runtime's envtest, with CRDs
// from pinned upstream modules installed.
//
// Today it is the API server alone; controllers (kube-controller-manager,
// kwok, Argo Rollouts) will join through Options as later work needs them.
package testcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AssetsEnv names the directory holding kube-apiserver and etcd, as envtest
// expects; `hack/tools.sh kubebuilder-assets` prints it.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Options configure the cluster.
type Options struct {
	// AssetsDir holds kube-apiserver and etcd ("" reads $KUBEBUILDER_ASSETS).
	AssetsDir string
	// CRDDirs are directories of CRD manifests to install before returning.
	CRDDirs []string
}

// Cluster is a running control plane.
type Cluster struct {
	Config  *rest.Config
	env     *envtest.Environment
	Started time.Duration // how long start and CRD installation took
	CRDs    int
}

// Start launches etcd and kube-apiserver on free loopback ports and installs
// the CRDs. Stop it when done.
func Start(o Options) (*Cluster, error) {
	dir := o.AssetsDir
	if dir == "" {
		dir = os.Getenv(AssetsEnv)
	}
	if dir == "" {
		return nil, fmt.Errorf("%s is not set: run `make test`, or export %s=$(hack/tools.sh kubebuilder-assets)", AssetsEnv, AssetsEnv)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return nil, fmt.Errorf("%s=%s has no %s: run hack/tools.sh kubebuilder-assets", AssetsEnv, dir, bin)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDDirectoryPaths:        o.CRDDirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	return &Cluster{Config: cfg, env: env, Started: time.Since(start), CRDs: len(env.CRDs)}, nil
}

// Stop shuts the control plane down and removes its data.
func (c *Cluster) Stop() error {
	if c == nil || c.env == nil {
		return errors.New("cluster not started")
	}
	return c.env.Stop()
}
