package testcluster

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Well-known Node labels the scheduler and workloads select on.
const (
	LabelHostname = "kubernetes.io/hostname"
	LabelZone     = "topology.kubernetes.io/zone"
	LabelRegion   = "topology.kubernetes.io/region"
)

// Node declares one fake Node: kwok plays its kubelet, so it becomes Ready
// and its pods Running and Ready without any container.
type Node struct {
	Name string
	// Labels are added to kubernetes.io/hostname=<Name>, kubernetes.io/os=linux
	// and kubernetes.io/arch=amd64, which every kubelet sets.
	Labels map[string]string
	// Capacity is what the node has (cpu, memory, pods); Allocatable what the
	// scheduler may hand out ("" = Capacity).
	Capacity    corev1.ResourceList
	Allocatable corev1.ResourceList
	Taints      []corev1.Taint
}

// Resources is a ResourceList of cpu, memory and pods, e.g.
// Resources("4", "8Gi", "110"). It panics on a malformed quantity: the
// arguments are constants in code, not input.
func Resources(cpu, memory, pods string) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(memory),
		corev1.ResourcePods:   resource.MustParse(pods),
	}
}

// withStorage adds the node's ephemeral storage (its root filesystem, which
// every kubelet reports) to r: pods that request or limit ephemeral-storage
// schedule only where it fits.
func withStorage(r corev1.ResourceList, size string) corev1.ResourceList {
	r[corev1.ResourceEphemeralStorage] = resource.MustParse(size)
	return r
}

// KindNodes is a one-node kind cluster: a single control-plane node that
// takes workloads (kind removes the control-plane taint when it is the only
// node), no zone or region labels, 4 CPU, 8 GiB and 50 GiB of disk.
func KindNodes() []Node {
	return []Node{{
		Name:     "kind-control-plane",
		Labels:   map[string]string{"node-role.kubernetes.io/control-plane": ""},
		Capacity: withStorage(Resources("4", "8Gi", "110"), "50Gi"),
	}}
}

// ProductionZones are the zones of ProductionNodes.
func ProductionZones() []string { return []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"} }

// ProductionNodes is a three-zone production cluster: two worker nodes per
// zone of ProductionZones(), 8 CPU, 32 GiB and 20 GiB of disk each, labelled with their zone
// and region like a cloud provider labels them.
func ProductionNodes() []Node {
	var nodes []Node
	for _, zone := range ProductionZones() {
		for i := 1; i <= 2; i++ {
			nodes = append(nodes, Node{
				Name: fmt.Sprintf("worker-%s-%d", zone, i),
				Labels: map[string]string{
					LabelZone:                          zone,
					LabelRegion:                        "eu-west-1",
					"node.kubernetes.io/instance-type": "m6i.2xlarge",
				},
				// EKS managed node groups' default root volume: 20 GiB.
				Capacity: withStorage(Resources("8", "32Gi", "110"), "20Gi"),
			})
		}
	}
	return nodes
}

// object returns the Node object to create.
func (n Node) object() (*corev1.Node, error) {
	if n.Name == "" {
		return nil, fmt.Errorf("node without a name")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods} {
		if _, ok := n.Capacity[r]; !ok {
			return nil, fmt.Errorf("node %s: capacity has no %s", n.Name, r)
		}
	}
	labels := map[string]string{
		LabelHostname:        n.Name,
		"kubernetes.io/os":   "linux",
		"kubernetes.io/arch": "amd64",
	}
	for k, v := range n.Labels {
		labels[k] = v
	}
	allocatable := n.Allocatable
	if allocatable == nil {
		allocatable = n.Capacity
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   n.Name,
			Labels: labels,
		},
		Spec: corev1.NodeSpec{Taints: n.Taints},
		Status: corev1.NodeStatus{
			Capacity:    n.Capacity.DeepCopy(),
			Allocatable: allocatable.DeepCopy(),
			Phase:       corev1.NodePending,
		},
	}, nil
}

// createNodes creates the Nodes; kwok fills in their conditions.
func createNodes(ctx context.Context, c client.Client, nodes []Node) error {
	seen := map[string]bool{}
	for _, n := range nodes {
		obj, err := n.object()
		if err != nil {
			return err
		}
		if seen[n.Name] {
			return fmt.Errorf("node %s declared twice", n.Name)
		}
		seen[n.Name] = true
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
	}
	return nil
}

// nodesReady reports whether every named Node is Ready, and which are not.
func nodesReady(ctx context.Context, c client.Client, names []string) (bool, error) {
	var list corev1.NodeList
	if err := c.List(ctx, &list); err != nil {
		return false, err
	}
	ready := map[string]bool{}
	for _, n := range list.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready[n.Name] = true
			}
		}
	}
	var missing []string
	for _, name := range names {
		if !ready[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return false, fmt.Errorf("nodes not Ready: %s", strings.Join(missing, ", "))
	}
	return true, nil
}
