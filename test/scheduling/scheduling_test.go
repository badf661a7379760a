// Package scheduling proves that everything the root app-of-apps deploys
// schedules and becomes ready on cluster-shaped nodes: a one-node kind
// cluster (no zone labels, 4 CPU, 8 GiB) with the local apps overlay, and a
// three-zone production cluster with the full one. On internal/testcluster
// (kube-apiserver with Pod Security and ServiceAccount admission,
// kube-controller-manager, kube-scheduler, kwok Nodes whose kubelets and
// volume provisioner kwok plays) it applies the bootstrap install and every
// Application's rendered objects (this repository's Kustomize paths, and the
// upstream charts rendered with their Applications' values by
// internal/charts) the way Argo CD syncs them: wave by wave, each wave's
// objects by Argo CD's kind order with server-side apply, and the next wave
// only once this one's workloads are ready. Then every workload has its
// wanted ready replicas, every HPA's target exists, and every PVC is bound.
//
// What the simulated cluster cannot run is left out and said so: admission
// webhook configurations (no webhook server behind kwok's pods would answer,
// and the API server would then refuse every request they match), aggregated
// APIServices (metrics-server's; verify's "metrics sources" check covers
// them), and Helm hook Jobs (Argo CD runs them as sync hooks; their pods
// never complete under kwok).
package scheduling

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/bootstrap"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ml-platform/platform/internal/charts"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testcluster"
	"github.com/ml-platform/platform/internal/testtools"
)

const repoRoot = "../.."

// unit is what one Argo CD sync step applies: the bootstrap install, the
// root's own objects of one wave (AppProjects), or one Application.
type unit struct {
	name string
	wave int
	objs []render.Object
	// namespace is created first when the Application has
	// CreateNamespace=true, with its managedNamespaceMetadata labels.
	namespace       string
	namespaceLabels map[string]string
	destination     string
}

// plan is the sync of the root Application whose path is appsDir, after the
// bootstrap install: units in the order Argo CD syncs them.
func plan(t *testing.T, appsDir string) []unit {
	t.Helper()
	repo, err := gitops.Load(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	ups, err := repo.ResolveUpstreams()
	if err != nil {
		t.Fatal(err)
	}
	rr := &gitops.Renderer{Upstreams: ups}
	install, err := rr.Build(repo.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	units := []unit{{name: "bootstrap install (" + repo.Rel(repo.Bootstrap) + ")", wave: -1 << 30, objs: install, destination: "argocd"}}
	children, err := rr.Build(filepath.Join(repoRoot, appsDir))
	if err != nil {
		t.Fatal(err)
	}
	helm := ""
	rootObjs := map[int][]render.Object{}
	for _, o := range children {
		w := wave(o)
		if !gitops.IsArgo(o.Unstructured, "Application") {
			rootObjs[w] = append(rootObjs[w], o)
			continue
		}
		u := unit{name: "Application " + o.GetName(), wave: w}
		u.destination, _, _ = unstructured.NestedString(o.Object, "spec", "destination", "namespace")
		opts, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "syncPolicy", "syncOptions")
		if slices.Contains(opts, "CreateNamespace=true") {
			u.namespace = u.destination
			u.namespaceLabels, _, _ = unstructured.NestedStringMap(o.Object, "spec", "syncPolicy", "managedNamespaceMetadata", "labels")
		}
		if ours := gitops.SourcesFrom(o.Unstructured, repo.RepoURL); len(ours) > 0 {
			if u.objs, err = rr.Build(filepath.Join(repoRoot, ours[0].Path)); err != nil {
				t.Fatal(err)
			}
		} else if c, ok := charts.ByApp(o.GetName()); ok {
			if helm == "" {
				helm = testtools.Bin(t, "HELM_BIN", "helm")
			}
			if u.objs, err = charts.Render(repo, helm, c, charts.FromApplication(o.Unstructured), charts.Options{IncludeCRDs: true}); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Fatalf("Application %s: its source is neither this repository nor a chart internal/charts knows", o.GetName())
		}
		units = append(units, u)
	}
	for w, objs := range rootObjs {
		units = append(units, unit{name: fmt.Sprintf("root objects of wave %d", w), wave: w, objs: objs, destination: "argocd"})
	}
	// Argo CD syncs a wave's resources together; the root's own objects of
	// a wave (AppProjects) and its Applications' content are one wave here.
	sort.SliceStable(units, func(i, j int) bool { return units[i].wave < units[j].wave })
	return units
}

func wave(o render.Object) int {
	w, _ := strconv.Atoi(o.GetAnnotations()["argocd.argoproj.io/sync-wave"])
	return w
}

// kindOrder is Argo CD's (gitops-engine's) order of kinds within a wave;
// kinds it does not list (custom resources) come last.
var kindOrder = []string{
	"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
	"ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
	"CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList",
	"Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController",
	"ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
	"APIService",
}

func kindRank(o render.Object) int {
	if i := slices.Index(kindOrder, o.GetKind()); i >= 0 {
		return i
	}
	return len(kindOrder)
}

// skipped says why the simulated cluster does not apply o, or "".
func skipped(o render.Object) string {
	a := o.GetAnnotations()
	switch {
	case o.GetKind() == "ValidatingWebhookConfiguration" || o.GetKind() == "MutatingWebhookConfiguration":
		return "admission webhook: no server behind kwok's pods"
	case o.GetKind() == "APIService":
		return "aggregated API: no server behind kwok's pods"
	case a["helm.sh/hook"] != "" || a["argocd.argoproj.io/hook"] != "":
		return "sync hook"
	}
	return ""
}

// syncError is a failed step, naming the object.
type syncError struct {
	unit, object string
	err          error
}

func (e *syncError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.unit, e.object, e.err)
}

// report is what a sync did.
type report struct {
	applied, skipped int
	workloads        []testcluster.Workload
	waves            []string
}

// sync applies the units wave by wave. Within a wave the Applications sync
// side by side, and one that fails (a namespace or CRD another Application
// of the same wave brings) retries, as Argo CD's retry does: the wave's
// units are applied in passes until all succeed or a pass makes no
// progress, whose first error is returned. With waitReady, each wave's
// workloads must be ready before the next wave starts (within timeout).
func sync(ctx context.Context, c *testcluster.Cluster, units []unit, waitReady bool, timeout time.Duration) (*report, error) {
	rep := &report{}
	for i := 0; i < len(units); {
		w := units[i].wave
		start := time.Now()
		var pending []unit
		for ; i < len(units) && units[i].wave == w; i++ {
			pending = append(pending, units[i])
		}
		var wl []testcluster.Workload
		for len(pending) > 0 {
			var failed []unit
			var firstErr error
			for _, u := range pending {
				got, err := applyUnit(ctx, c, u, w, rep)
				wl = append(wl, got...)
				if err != nil {
					failed = append(failed, u)
					if firstErr == nil {
						firstErr = err
					}
				}
			}
			if len(failed) == len(pending) {
				return rep, firstErr
			}
			pending = failed
		}
		rep.workloads = append(rep.workloads, wl...)
		if waitReady && len(wl) > 0 {
			wctx, cancel := context.WithTimeout(ctx, timeout)
			err := c.WaitReady(wctx, wl...)
			cancel()
			if err != nil {
				return rep, fmt.Errorf("wave %s: its workloads are not ready after %s, so Argo CD would never start the next wave: %w", waveName(w), timeout, err)
			}
		}
		rep.waves = append(rep.waves, fmt.Sprintf("wave %s: %d workloads ready in %.1fs", waveName(w), len(wl), time.Since(start).Seconds()))
	}
	return rep, nil
}

// applyUnit applies one Application's objects in Argo CD's order and
// returns the workloads it applied.
func applyUnit(ctx context.Context, c *testcluster.Cluster, u unit, w int, rep *report) ([]testcluster.Workload, error) {
	var wl []testcluster.Workload
	if u.namespace != "" {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: u.namespace, Labels: u.namespaceLabels}}
		if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, &syncError{u.name, "Namespace/" + u.namespace, err}
		}
	}
	objs := slices.Clone(u.objs)
	slices.SortStableFunc(objs, func(a, b render.Object) int {
		if d := wave(a) - wave(b); d != 0 {
			return d
		}
		return kindRank(a) - kindRank(b)
	})
	for _, o := range objs {
		if skipped(o) != "" {
			rep.skipped++
			continue
		}
		obj := o.DeepCopy()
		if obj.GetNamespace() == "" {
			if namespaced, err := c.Client.IsObjectNamespaced(obj); err == nil && namespaced {
				obj.SetNamespace(u.destination)
			}
		}
		if err := c.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("argocd-controller"), client.ForceOwnership); err != nil {
			if meta.IsNoMatchError(err) {
				err = fmt.Errorf("no CRD for %s is installed yet: an earlier wave (or this Application) must bring it (%w)", obj.GroupVersionKind().GroupKind(), err)
			}
			return wl, &syncError{fmt.Sprintf("wave %s, %s", waveName(w), u.name), render.Ref(obj), err}
		}
		rep.applied++
		switch obj.GetKind() {
		case "CustomResourceDefinition":
			if err := bootstrap.WaitEstablished(ctx, c.Client, obj.GetName()); err != nil {
				return wl, &syncError{u.name, render.Ref(obj), err}
			}
		case "Deployment", "StatefulSet", "DaemonSet", "Rollout":
			wl = append(wl, testcluster.Workload{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()})
		}
	}
	return wl, nil
}

func waveName(w int) string {
	if w == -1<<30 {
		return "bootstrap"
	}
	return strconv.Itoa(w)
}

// startCluster starts a simulated cluster with nodes shaped like the target
// and a default StorageClass whose volumes kwok provisions (it stands in
// for kind's "standard" class and a cloud's default).
func startCluster(t *testing.T, nodes []testcluster.Node) *testcluster.Cluster {
	t.Helper()
	o := testcluster.Options{ControllerManager: len(nodes) > 0, Scheduler: len(nodes) > 0, Nodes: nodes}
	if len(nodes) > 0 {
		// The environments' ml-inference is an Argo Rollouts Rollout: the
		// real controller runs it, as the argo-rollouts Application (wave
		// -2) would in a cluster. The controller needs its CRDs when it
		// starts, so they are installed before the sync; the sync applies
		// the vendored release's copies over them.
		o.Rollouts = true
		o.CRDDirs = rolloutCRDDirs(t)
	}
	c := testcluster.StartForTest(t, o)
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "kwok-volume", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner: "kwok.x-k8s.io/volume",
	}
	if err := c.Client.Create(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	return c
}

// rolloutCRDDirs are the Argo Rollouts CRD directories among those make
// test exports (hack/tools.sh crds).
func rolloutCRDDirs(t *testing.T) []string {
	t.Helper()
	dirs := slices.DeleteFunc(filepath.SplitList(os.Getenv("PLATFORMCTL_CRD_DIRS")), func(d string) bool { return !strings.Contains(d, "/argo-rollouts@") })
	if len(dirs) == 0 {
		t.Fatal("PLATFORMCTL_CRD_DIRS has no Argo Rollouts CRDs: run `make test`, or export PLATFORMCTL_CRD_DIRS=$(hack/tools.sh crds | paste -sd: -)")
	}
	return dirs
}

// checkAfterSync: every HPA's target exists, every PVC is bound.
func checkAfterSync(t *testing.T, ctx context.Context, c *testcluster.Cluster) {
	t.Helper()
	hpas := &unstructured.UnstructuredList{}
	hpas.SetAPIVersion("autoscaling/v2")
	hpas.SetKind("HorizontalPodAutoscalerList")
	if err := c.Client.List(ctx, hpas); err != nil {
		t.Fatal(err)
	}
	for _, h := range hpas.Items {
		ref, _, _ := unstructured.NestedStringMap(h.Object, "spec", "scaleTargetRef")
		target := &unstructured.Unstructured{}
		target.SetAPIVersion(ref["apiVersion"])
		target.SetKind(ref["kind"])
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: h.GetNamespace(), Name: ref["name"]}, target); err != nil {
			t.Errorf("HorizontalPodAutoscaler %s/%s: its target %s %s does not exist: %v", h.GetNamespace(), h.GetName(), ref["kind"], ref["name"], err)
		}
	}
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := c.Client.List(ctx, pvcs); err != nil {
		t.Fatal(err)
	}
	for _, p := range pvcs.Items {
		if p.Status.Phase != corev1.ClaimBound {
			class := "the default class"
			if p.Spec.StorageClassName != nil {
				class = "class " + *p.Spec.StorageClassName
			}
			t.Errorf("PersistentVolumeClaim %s/%s is %s: no volume binds it (%s)", p.Namespace, p.Name, p.Status.Phase, class)
		}
	}
	t.Logf("%d HPAs with their targets, %d PVCs bound", len(hpas.Items), len(pvcs.Items))
}

func runShape(t *testing.T, appsDir string, nodes []testcluster.Node) {
	start := time.Now()
	units := plan(t, appsDir)
	c := startCluster(t, nodes)
	ctx := context.Background()
	rep, err := sync(ctx, c, units, true, 3*time.Minute)
	for _, w := range rep.waves {
		t.Log(w)
	}
	if err != nil {
		t.Fatal(err)
	}
	checkAfterSync(t, ctx, c)
	t.Logf("%s on %d nodes: %d objects applied (%d skipped: webhooks, APIServices, hooks), %d workloads ready, in %.1fs",
		appsDir, len(nodes), rep.applied, rep.skipped, len(rep.workloads), time.Since(start).Seconds())
}

// (a) A laptop: one kind node, no zones, 4 CPU, 8 GiB, the local apps.
func TestKindShapedClusterRunsTheLocalApps(t *testing.T) {
	t.Parallel() // most of the time is waiting for kwok's pod stages
	runShape(t, "infrastructure/local/apps", testcluster.KindNodes())
}

// (b) Production: three zones, two nodes each, the full apps (prod too).
func TestProductionShapedClusterRunsEverything(t *testing.T) {
	t.Parallel() // most of the time is waiting for kwok's pod stages
	runShape(t, "infrastructure/argocd/apps", testcluster.ProductionNodes())
}

// Planted: prod's required zone spread on the one-node kind cluster (the
// defect the local overlay avoids) does not schedule, and the failure names
// the Deployment and the scheduler's reason.
func TestPlantedUnschedulableConstraintIsNamed(t *testing.T) {
	t.Parallel() // most of the time is waiting for kwok's pod stages
	var prod []unit
	for _, u := range plan(t, "infrastructure/argocd/apps") {
		if u.name == "Application ml-inference-prod" {
			// The route's CRD comes with the gateway, which this cluster
			// does not need to show the scheduling failure.
			u.objs = slices.DeleteFunc(slices.Clone(u.objs), func(o render.Object) bool { return o.GetKind() == "HTTPRoute" })
			prod = append(prod, u)
		}
	}
	if len(prod) != 1 {
		t.Fatalf("want ml-inference-prod, got %d units", len(prod))
	}
	c := startCluster(t, testcluster.KindNodes())
	_, err := sync(context.Background(), c, prod, true, 25*time.Second)
	if err == nil {
		t.Fatal("prod scheduled on a one-node cluster without zones")
	}
	t.Logf("prod on one node fails as it should: %.900s", err)
	for _, want := range []string{"wave 0", "Rollout ml-inference-prod/ml-inference", "topology spread constraints"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// Planted: a custom resource in a wave before its CRD's (the secret
// configuration moved ahead of External Secrets) fails, naming the object
// and the Application.
func TestPlantedWaveInversionIsNamed(t *testing.T) {
	t.Parallel() // most of the time is waiting for kwok's pod stages
	units := plan(t, "infrastructure/argocd/apps")
	moved := false
	for i := range units {
		if units[i].name == "Application external-secrets-config" {
			units[i].wave = -3
			moved = true
		}
	}
	if !moved {
		t.Fatal("no external-secrets-config Application to move")
	}
	sort.SliceStable(units, func(i, j int) bool { return units[i].wave < units[j].wave })
	c := startCluster(t, nil)
	_, err := sync(context.Background(), c, units, false, 0)
	var se *syncError
	if !errors.As(err, &se) {
		t.Fatalf("want a sync error naming the object, got %v", err)
	}
	t.Logf("the inversion fails as it should: %v", err)
	// The first External Secrets object in the Application's render order
	// fails (a ClusterSecretStore or a ClusterExternalSecret); which one is
	// the renderer's business, the named CRD and object are the contract.
	kind, _, _ := strings.Cut(se.object, "/")
	if !strings.Contains(se.unit, "Application external-secrets-config") || !strings.HasPrefix(kind, "Cluster") ||
		!strings.Contains(se.err.Error(), "no CRD for "+kind+".external-secrets.io is installed yet") {
		t.Errorf("error: %v", err)
	}
}
