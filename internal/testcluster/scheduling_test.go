package testcluster

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// spreadDeployment is 3 replicas that must spread over 3 zones: at most one
// more pod in any zone than in another, and no pod on a node without a zone.
func spreadDeployment(namespace string) *appsv1.Deployment {
	labels := map[string]string{"app": "spread"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "spread"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew:           1,
						TopologyKey:       LabelZone,
						WhenUnsatisfiable: corev1.DoNotSchedule,
						MinDomains:        new(int32(3)),
						LabelSelector:     &metav1.LabelSelector{MatchLabels: labels},
					}},
					Containers: []corev1.Container{{
						Name:  "app",
						Image: "ml-inference:test", // kwok runs no container
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("500m"),
							corev1.ResourceMemory: resource.MustParse("512Mi"),
						}},
					}},
				},
			},
		},
	}
}

// podTemplate is a pod of one container that asks for little.
func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:      "app",
			Image:     app + ":test",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
		}}},
	}
}

func statefulSet(namespace string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "store"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            new(int32(2)),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": "store"}},
			Template:            podTemplate("store"),
		},
	}
}

func daemonSet(namespace string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: podTemplate("agent"),
		},
	}
}

func createNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

// TestZoneSpread starts a production-shaped and a kind-shaped cluster at
// once. On three zones the spread Deployment gets one ready pod per zone;
// on kind, the planted failure, the node has no zone label, the scheduler
// refuses every pod, and WaitReady's error carries its reason.
func TestZoneSpread(t *testing.T) {
	t.Parallel()
	runConcurrently(t,
		subtest{"production: one pod per zone", zoneSpreadOnProduction},
		subtest{"kind: unschedulable, and says why", zoneSpreadFailsOnKind},
	)
}

func zoneSpreadOnProduction(t *testing.T) {
	c := StartForTest(t, Options{ControllerManager: true, Scheduler: true, Nodes: ProductionNodes()})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createNamespace(t, c.Client, "spread")
	start := time.Now()
	// With it, the other workload kinds WaitReady knows.
	for _, obj := range []client.Object{spreadDeployment("spread"), statefulSet("spread"), daemonSet("spread")} {
		if err := c.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	err := c.WaitReady(ctx,
		Workload{"Deployment", "spread", "spread"},
		Workload{"StatefulSet", "spread", "store"},
		Workload{"DaemonSet", "spread", "agent"},
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Deployment of 3, StatefulSet of 2 and DaemonSet on 6 nodes ready in %v", time.Since(start).Round(time.Millisecond))
	var agents appsv1.DaemonSet
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "spread", Name: "agent"}, &agents); err != nil {
		t.Fatal(err)
	}
	if n := agents.Status.NumberReady; n != int32(len(ProductionNodes())) {
		t.Errorf("DaemonSet ready on %d nodes, want %d", n, len(ProductionNodes()))
	}

	zoneOf := map[string]string{}
	for _, n := range ProductionNodes() {
		zoneOf[n.Name] = n.Labels[LabelZone]
	}
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace("spread"), client.MatchingLabels{"app": "spread"}); err != nil {
		t.Fatal(err)
	}
	perZone := map[string]int{}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s is %s, want Running", p.Name, p.Status.Phase)
		}
		perZone[zoneOf[p.Spec.NodeName]]++
		// ServiceAccount admission is on, as in a real cluster: it mounts
		// the token volume.
		if !slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool { return strings.HasPrefix(v.Name, "kube-api-access-") }) {
			t.Errorf("pod %s has no kube-api-access volume: ServiceAccount admission is off", p.Name)
		}
	}
	for _, z := range ProductionZones() {
		if perZone[z] != 1 {
			t.Errorf("zone %s has %d pods, want 1 (all: %v)", z, perZone[z], perZone)
		}
	}
}

func zoneSpreadFailsOnKind(t *testing.T) {
	c := StartForTest(t, Options{ControllerManager: true, Scheduler: true, Nodes: KindNodes()})
	createNamespace(t, c.Client, "spread")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// As in a real cluster, a pod naming a missing ServiceAccount is refused.
	lost := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "spread", Name: "lost"},
		Spec:       corev1.PodSpec{ServiceAccountName: "missing", Containers: []corev1.Container{{Name: "app", Image: "ml-inference:test"}}},
	}
	if err := c.Client.Create(ctx, lost); err == nil || !strings.Contains(err.Error(), `serviceaccount "missing" not found`) {
		t.Errorf("pod with a missing ServiceAccount: got %v, want refused", err)
	}
	if err := c.Client.Create(ctx, spreadDeployment("spread")); err != nil {
		t.Fatal(err)
	}
	err := c.WaitReady(ctx, Workload{"Deployment", "spread", "spread"})
	if err == nil {
		t.Fatal("3 pods spread over 3 zones became ready on a node without zones")
	}
	t.Logf("WaitReady said:\n%v", err)
	for _, want := range []string{
		"Deployment spread/spread: 0/3 ready",
		"3 pod(s) Pending, Unschedulable: 0/1 nodes are available",
		"pod topology spread constraints",
		"FailedScheduling",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitReady's error does not say %q", want)
		}
	}
}

type subtest struct {
	name string
	f    func(*testing.T)
}

// runConcurrently runs the subtests at once. They do not call t.Parallel:
// go test's -parallel (GOMAXPROCS, 2 on this machine) would queue them, and
// they spend their time waiting on clusters, not computing.
func runConcurrently(t *testing.T, tests ...subtest) {
	t.Helper()
	var wg sync.WaitGroup
	for _, st := range tests {
		wg.Go(func() { t.Run(st.name, st.f) })
	}
	wg.Wait()
}
