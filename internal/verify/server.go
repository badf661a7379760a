package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/testcluster"
)

// ServerResult counts what the API server accepted, by entry point.
type ServerResult struct {
	Validated map[string]int
}

// Server validates every rendered object on a real kube-apiserver: it creates
// the namespaces the manifests declare (and the external ones), then
// server-side dry-run creates every other object with strict field
// validation, so unknown fields, broken selectors, invalid values, missing
// namespaces and kinds without a CRD are all errors that name the object.
func Server(ctx context.Context, cfg *rest.Config, repo *gitops.Repository, r *Rendered) (ServerResult, []Finding) {
	res := ServerResult{Validated: map[string]int{}}
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		return res, []Finding{{Where: "kube-apiserver", Message: "client: " + err.Error()}}
	}
	var fs []Finding
	ensureNamespace := func(name string) error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := cl.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}
	for _, ns := range repo.ExternalNamespaces {
		if err := ensureNamespace(ns); err != nil {
			fs = append(fs, Finding{Where: "kube-apiserver", Object: "Namespace/" + ns, Message: err.Error()})
		}
	}
	// Namespaces first, for real: the dry-run creates below need them.
	for _, where := range r.Order {
		for _, o := range r.Objects[where] {
			if o.GetKind() != "Namespace" || o.GetAPIVersion() != "v1" {
				continue
			}
			obj := o.DeepCopy()
			if err := cl.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil && !apierrors.IsAlreadyExists(err) {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: describe(err)})
				continue
			}
			res.Validated[where]++
		}
	}
	for _, where := range r.Order {
		for _, o := range r.Objects[where] {
			if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
				continue
			}
			obj := o.DeepCopy()
			obj.SetResourceVersion("")
			err := cl.Create(ctx, obj, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
			if apierrors.IsAlreadyExists(err) && o.GetKind() == "CustomResourceDefinition" {
				// A CRD the manifests bring (Argo Rollouts' vendored release
				// manifest) that the server already has from tools/crds: it
				// is validated as the update a sync would make.
				err = dryRunUpdate(ctx, cl, obj)
			}
			if err != nil {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: describe(err)})
				continue
			}
			res.Validated[where]++
		}
	}
	return res, fs
}

// dryRunUpdate validates obj as a server-side dry-run update of the live
// object of the same name.
func dryRunUpdate(ctx context.Context, cl client.Client, obj client.Object) error {
	live := obj.DeepCopyObject().(client.Object)
	if err := cl.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		return err
	}
	obj.SetResourceVersion(live.GetResourceVersion())
	return cl.Update(ctx, obj, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
}

// checkServer starts kube-apiserver and etcd (envtest) with the CRDs of
// tools/crds and runs Server on it.
func checkServer(ctx context.Context, in *Inputs) ([]Finding, string, error) {
	sc := in.cluster
	if sc == nil {
		sc = startCluster(in.Options)
		defer sc.stop()
	}
	cluster, err := sc.wait()
	if err != nil {
		return nil, "", err
	}
	res, fs := Server(ctx, cluster.Config, in.Repo, in.Rendered)
	total := 0
	for _, n := range res.Validated {
		total += n
	}
	return fs, fmt.Sprintf("started with %d CRDs in %.1fs; accepted %s (server-side dry run, strict fields)",
		cluster.CRDs, cluster.Started.Seconds(), plural(total, "object", "objects")), nil
}

// startingCluster is kube-apiserver and etcd on their way up.
type startingCluster struct {
	done    chan struct{}
	cluster *testcluster.Cluster
	err     error
}

// startCluster starts the API server in the background.
func startCluster(o Options) *startingCluster {
	sc := &startingCluster{done: make(chan struct{})}
	go func() {
		defer close(sc.done)
		sc.cluster, sc.err = testcluster.Start(testcluster.Options{AssetsDir: o.AssetsDir, CRDDirs: o.CRDDirs})
	}()
	return sc
}

func (sc *startingCluster) wait() (*testcluster.Cluster, error) {
	<-sc.done
	return sc.cluster, sc.err
}

// stop waits for the start to finish, then stops what started.
func (sc *startingCluster) stop() {
	if c, err := sc.wait(); err == nil {
		c.Stop()
	}
}

// describe makes API errors readable: the server's causes, one per line.
func describe(err error) string {
	if meta.IsNoMatchError(err) {
		return "unknown kind: no CRD for it is installed in the test API server (" + err.Error() + "); add its CRD module to tools/crds"
	}
	var status apierrors.APIStatus
	if s, ok := err.(apierrors.APIStatus); ok {
		status = s
	}
	if status == nil {
		return err.Error()
	}
	st := status.Status()
	msg := st.Message
	if apierrors.IsNotFound(err) && st.Details != nil && st.Details.Kind == "namespaces" {
		msg = fmt.Sprintf("namespace %q does not exist: declare it in this entry point or list it in externalNamespaces", st.Details.Name)
	}
	if st.Details != nil && len(st.Details.Causes) > 0 {
		var causes []string
		for _, cause := range st.Details.Causes {
			c := cause.Message
			if cause.Field != "" && !strings.Contains(c, cause.Field) {
				c = cause.Field + ": " + c
			}
			if !slices.Contains(causes, c) {
				causes = append(causes, c)
			}
		}
		msg = strings.Join(causes, "; ")
	}
	return fmt.Sprintf("rejected by kube-apiserver (%s): %s", st.Reason, msg)
}
