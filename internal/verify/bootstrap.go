package verify

// The checks in this file each catch one class of mistake that kept a first
// bootstrap on a real cluster from coming up healthy: they read only what
// the render and platform.yaml say, so they run in milliseconds.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

// minRetries is the fewest automated-sync retries an Application may have:
// a first bootstrap waits minutes for CRDs, webhooks and images, and once
// the limit is spent Argo CD stops retrying until the next commit.
const minRetries = 10

// checkSyncPolicy: every automated Application (and the root) retries with a
// backoff and at least minRetries times (or without limit).
func checkSyncPolicy(_ context.Context, in *Inputs) ([]Finding, string, error) {
	var fs []Finding
	n := 0
	for _, where := range in.Rendered.Order {
		for _, o := range in.Rendered.Objects[where] {
			if !gitops.IsArgo(o.Unstructured, "Application") {
				continue
			}
			if _, automated, _ := unstructured.NestedMap(o.Object, "spec", "syncPolicy", "automated"); !automated {
				continue
			}
			n++
			report := func(format string, args ...any) {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(format, args...)})
			}
			limit, found, _ := unstructured.NestedInt64(o.Object, "spec", "syncPolicy", "retry", "limit")
			switch {
			case !found:
				report("spec.syncPolicy.retry is missing: a failed automated sync is not retried until the next commit")
			case limit >= 0 && limit < minRetries:
				report("spec.syncPolicy.retry.limit is %d; a first bootstrap needs at least %d (CRDs, webhooks and images arrive over minutes, and after the last retry automated sync stops)", limit, minRetries)
			}
			if found {
				if d, _, _ := unstructured.NestedString(o.Object, "spec", "syncPolicy", "retry", "backoff", "duration"); d == "" {
					report("spec.syncPolicy.retry.backoff.duration is missing: retries would come at once")
				}
			}
		}
	}
	return fs, plural(n, "automated Application", "automated Applications") + " retry with a backoff", nil
}

// checkCRDOrdering: an Application that syncs custom resources whose CRD
// another Application of the same bootstrap installs must not fail its
// dry run before that CRD exists: it carries SkipDryRunOnMissingResource=true
// (in its syncOptions, or on each such object). CRDs rendered by the
// Application itself are applied first by Argo CD; those of the bootstrap
// install (platform.yaml `bootstrap`) exist before the root.
func checkCRDOrdering(_ context.Context, in *Inputs) ([]Finding, string, error) {
	preinstalled := map[string]bool{}
	if in.Repo.Bootstrap != "" {
		for _, o := range in.Rendered.Objects[in.Repo.Bootstrap] {
			if g := crdGroupKind(o); g != "" {
				preinstalled[g] = true
			}
		}
	}
	var fs []Finding
	checked := 0
	for _, app := range applications(in) {
		objs, err := in.Renderer.Build(filepath.Join(in.Repo.Root, app.path))
		if err != nil {
			continue // the applications check reports it
		}
		own := map[string]bool{}
		for _, o := range objs {
			if g := crdGroupKind(o); g != "" {
				own[g] = true
			}
		}
		skipAll := slices.Contains(app.syncOptions, "SkipDryRunOnMissingResource=true")
		for _, o := range objs {
			gk := o.GroupVersionKind().GroupKind()
			if builtIn(gk.Group) || own[gk.String()] || preinstalled[gk.String()] {
				continue
			}
			checked++
			if skipAll || strings.Contains(o.GetAnnotations()["argocd.argoproj.io/sync-options"], "SkipDryRunOnMissingResource=true") {
				continue
			}
			fs = append(fs, Finding{Where: app.where, Object: app.ref, Message: fmt.Sprintf(
				"syncs %s (%s), whose CRD another Application of this bootstrap installs, without SkipDryRunOnMissingResource=true: its first sync fails the dry run until the CRD exists", render.Ref(o.Unstructured), gk)})
		}
	}
	return fs, fmt.Sprintf("%s of CRDs installed by other Applications", plural(checked, "custom resource", "custom resources")), nil
}

// checkMetricsSources: every HPA's metrics come from an API some rendered
// APIService serves (metrics-server for Resource metrics).
func checkMetricsSources(_ context.Context, in *Inputs) ([]Finding, string, error) {
	served := map[string]bool{}
	for _, o := range in.Rendered.All() {
		if o.GetKind() == "APIService" && strings.HasPrefix(o.GetAPIVersion(), "apiregistration.k8s.io/") {
			served[o.GetName()] = true
		}
	}
	need := map[string]string{
		"Resource":          "v1beta1.metrics.k8s.io",
		"ContainerResource": "v1beta1.metrics.k8s.io",
		"Pods":              "v1beta1.custom.metrics.k8s.io",
		"Object":            "v1beta1.custom.metrics.k8s.io",
		"External":          "v1beta1.external.metrics.k8s.io",
	}
	var fs []Finding
	n := 0
	for _, where := range in.Rendered.Order {
		for _, o := range in.Rendered.Objects[where] {
			if o.GetKind() != "HorizontalPodAutoscaler" {
				continue
			}
			n++
			metrics, _, _ := unstructured.NestedSlice(o.Object, "spec", "metrics")
			for i, m := range metrics {
				typ, _, _ := unstructured.NestedString(m.(map[string]any), "type")
				api := need[typ]
				if api != "" && !served[api] {
					fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(
						"spec.metrics[%d] is a %s metric, served by APIService %s, which nothing here installs (metrics-server for Resource metrics): the HPA would report FailedGetResourceMetric", i, typ, api)})
				}
			}
		}
	}
	return fs, fmt.Sprintf("%s, %d metrics APIs installed", plural(n, "HPA", "HPAs"), len(served)), nil
}

// checkPriorities: the platform's PriorityClass exists; no environment's
// PriorityClass reaches it; every pod of the platform's own components
// (entry points that are not environments) names it, or a system class.
func checkPriorities(_ context.Context, in *Inputs) ([]Finding, string, error) {
	name := in.Repo.PlatformPriorityClass
	if name == "" {
		return nil, "no platformPriorityClass declared", nil
	}
	classes := map[string]int64{}
	for _, o := range in.Rendered.All() {
		if o.GetKind() == "PriorityClass" {
			v, _, _ := unstructured.NestedInt64(o.Object, "value")
			classes[o.GetName()] = v
		}
	}
	platform, ok := classes[name]
	if !ok {
		return []Finding{{Where: gitops.ConfigFile, Message: fmt.Sprintf("platformPriorityClass %q is rendered by no entry point", name)}}, "", nil
	}
	var fs []Finding
	pods := 0
	for _, where := range in.Rendered.Order {
		_, isEnv := in.Rendered.Env[where]
		for _, o := range in.Rendered.Objects[where] {
			if o.GetKind() == "PriorityClass" && isEnv {
				if v, _, _ := unstructured.NestedInt64(o.Object, "value"); v >= platform {
					fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(
						"value %d reaches the platform's %s (%d): on a full cluster these pods would preempt the platform's controllers (Kyverno's fail-closed admission, Argo CD, the metrics stack)", v, name, platform)})
				}
			}
			spec, ok := podSpec(o.Unstructured)
			if !ok || isEnv {
				continue
			}
			pods++
			pc, _, _ := unstructured.NestedString(spec, "priorityClassName")
			if pc != name && !strings.HasPrefix(pc, "system-") {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(
					"a platform component with priorityClassName %q; want %s, so environments' workloads never preempt it", pc, name)})
			}
		}
	}
	return fs, fmt.Sprintf("%s at %s (%d), environments below it", plural(pods, "platform pod template", "platform pod templates"), name, platform), nil
}

// versionTag is a release-looking tag; digests are always accepted.
var versionTag = regexp.MustCompile(`^v?\d+(\.\d+)*([-+._][0-9A-Za-z.-]+)*$`)

// checkImages: every image is either one this repository publishes, with a
// tag its release workflow pushes (sha-<commit on main> or vX.Y.Z) that
// names a commit or tag of this repository, or a third-party image pinned to
// a version or digest (never a branch tag like master or latest).
func checkImages(_ context.Context, in *Inputs) ([]Finding, string, error) {
	published := map[string]gitops.PublishedImage{}
	var fs []Finding
	for _, p := range in.Repo.Images {
		published[p.Name] = p
		wf, err := os.ReadFile(filepath.Join(in.Repo.Root, p.Workflow))
		if err != nil || !strings.Contains(string(wf), imageBase(p.Name)) {
			fs = append(fs, Finding{Where: gitops.ConfigFile, Message: fmt.Sprintf("images: %s is published by %s, which does not exist or never names it", p.Name, p.Workflow)})
		}
	}
	seen := map[string]bool{}
	for _, where := range in.Rendered.Order {
		for _, o := range in.Rendered.Objects[where] {
			for _, img := range images(o) {
				key := where + o.Ref() + img
				if seen[key] {
					continue
				}
				seen[key] = true
				if msg := judgeImage(in.Repo, published, img); msg != "" {
					fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: msg})
				}
			}
		}
	}
	return fs, fmt.Sprintf("%s checked against %s", plural(len(seen), "image reference", "image references"), plural(len(published), "published image", "published images")), nil
}

func judgeImage(repo *gitops.Repository, published map[string]gitops.PublishedImage, img string) string {
	name, tag, digest := splitImage(img)
	if p, ours := published[name]; ours {
		switch {
		case strings.HasPrefix(tag, "sha-"):
			if !gitObject(repo.Root, strings.TrimPrefix(tag, "sha-")+"^{commit}") {
				return fmt.Sprintf("image %s: %s publishes sha-<commit on main>, and %s is no commit of this repository: nothing published it (ImagePullBackOff)", img, p.Workflow, strings.TrimPrefix(tag, "sha-"))
			}
		case regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(tag):
			if !gitObject(repo.Root, "refs/tags/"+tag) {
				return fmt.Sprintf("image %s: %s publishes release tags, and this repository has no tag %s: nothing published it (ImagePullBackOff)", img, p.Workflow, tag)
			}
		default:
			return fmt.Sprintf("image %s: %s publishes only sha-<commit> and vX.Y.Z tags", img, p.Workflow)
		}
		return ""
	}
	if digest != "" {
		return ""
	}
	if tag == "" || !versionTag.MatchString(tag) {
		return fmt.Sprintf("image %s: a third-party image must be pinned to a release tag or a digest, not %q", img, tag)
	}
	return ""
}

// gitObject reports whether rev names an object of the repository at root
// (false outside a Git checkout).
func gitObject(root, rev string) bool {
	return exec.Command("git", "-C", root, "rev-parse", "--verify", "--quiet", rev).Run() == nil
}

func splitImage(img string) (name, tag, digest string) {
	name = img
	if i := strings.Index(name, "@"); i >= 0 {
		name, digest = name[:i], name[i+1:]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

func imageBase(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// images lists the container images of a pod template (or Pod).
func images(o render.Object) []string {
	spec, ok := podSpec(o.Unstructured)
	if !ok {
		return nil
	}
	var out []string
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		cs, _, _ := unstructured.NestedSlice(spec, field)
		for _, c := range cs {
			if img, _, _ := unstructured.NestedString(c.(map[string]any), "image"); img != "" {
				out = append(out, img)
			}
		}
	}
	return out
}

// checkSecretProducers: every Secret a pod reads (env, envFrom, volumes;
// optional ones aside) has a producer in its namespace: a rendered Secret,
// an ExternalSecret targeting it, a ClusterExternalSecret whose namespace
// selectors name that namespace, or a controller declared to create it
// (platform.yaml runtimeSecrets). Every remote key an ExternalSecret reads
// from the local (Kubernetes-provider) store is a secret bootstrap
// generates (platform.yaml secrets), with that property.
func checkSecretProducers(_ context.Context, in *Inputs) ([]Finding, string, error) {
	produced := map[string]bool{}
	for _, r := range in.Repo.RuntimeSecrets {
		produced[r.Namespace+"/"+r.Name] = true
	}
	for _, o := range in.Rendered.All() {
		switch {
		case o.GetKind() == "Secret" && o.GetAPIVersion() == "v1":
			produced[o.GetNamespace()+"/"+o.GetName()] = true
		case o.GetKind() == "ExternalSecret":
			target, _, _ := unstructured.NestedString(o.Object, "spec", "target", "name")
			if target == "" {
				target = o.GetName()
			}
			produced[o.GetNamespace()+"/"+target] = true
		case o.GetKind() == "ClusterExternalSecret":
			target, _, _ := unstructured.NestedString(o.Object, "spec", "externalSecretSpec", "target", "name")
			if target == "" {
				target, _, _ = unstructured.NestedString(o.Object, "spec", "externalSecretName")
			}
			for _, ns := range selectedNamespaces(o) {
				produced[ns+"/"+target] = true
			}
		}
	}
	store := map[string]map[string]bool{}
	for _, s := range in.Repo.Secrets {
		store[s.Name] = map[string]bool{}
		for k := range s.Keys {
			store[s.Name][k] = true
		}
	}
	var fs []Finding
	refs := 0
	for _, where := range in.Rendered.Order {
		localStore := map[string]bool{}
		for _, o := range in.Rendered.Objects[where] {
			if o.GetKind() == "ClusterSecretStore" || o.GetKind() == "SecretStore" {
				if _, k8s, _ := unstructured.NestedMap(o.Object, "spec", "provider", "kubernetes"); k8s {
					localStore[o.GetName()] = true
				}
			}
		}
		for _, o := range in.Rendered.Objects[where] {
			if spec, ok := podSpec(o.Unstructured); ok {
				for _, ref := range secretRefs(spec) {
					refs++
					if !produced[o.GetNamespace()+"/"+ref] {
						fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(
							"reads Secret %s/%s, which nothing produces (no Secret, ExternalSecret or declared runtimeSecrets entry): the pod would sit in CreateContainerConfigError", o.GetNamespace(), ref)})
					}
				}
			}
			var esSpec []string
			switch o.GetKind() {
			case "ExternalSecret":
				esSpec = []string{"spec"}
			case "ClusterExternalSecret":
				esSpec = []string{"spec", "externalSecretSpec"}
			default:
				continue
			}
			storeName, _, _ := unstructured.NestedString(o.Object, append(esSpec, "secretStoreRef", "name")...)
			if !localStore[storeName] {
				continue
			}
			data, _, _ := unstructured.NestedSlice(o.Object, append(esSpec, "data")...)
			for i, d := range data {
				key, _, _ := unstructured.NestedString(d.(map[string]any), "remoteRef", "key")
				prop, _, _ := unstructured.NestedString(d.(map[string]any), "remoteRef", "property")
				refs++
				switch keys, ok := store[key]; {
				case !ok:
					fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(
						"spec.data[%d] reads %s from store %s, which is not among the secrets bootstrap generates (%s secrets): it would stay SecretSyncedError", i, key, storeName, gitops.ConfigFile)})
				case prop != "" && !keys[prop]:
					fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(
						"spec.data[%d] reads property %s of %s, which bootstrap does not generate (keys: %s)", i, prop, key, strings.Join(sortedKeys(keys), ", "))})
				}
			}
		}
	}
	return fs, plural(refs, "secret reference", "secret references") + " with a producer", nil
}

// selectedNamespaces lists the namespaces a ClusterExternalSecret's
// namespace selectors name by kubernetes.io/metadata.name (matchLabels, or
// matchExpressions with operator In); a selector on other labels names none
// that verify can know.
func selectedNamespaces(o render.Object) []string {
	var out []string
	sels, _, _ := unstructured.NestedSlice(o.Object, "spec", "namespaceSelectors")
	if sel, found, _ := unstructured.NestedMap(o.Object, "spec", "namespaceSelector"); found {
		sels = append(sels, sel)
	}
	for _, s := range sels {
		m, _ := s.(map[string]any)
		if name, found, _ := unstructured.NestedString(m, "matchLabels", "kubernetes.io/metadata.name"); found {
			out = append(out, name)
		}
		exprs, _, _ := unstructured.NestedSlice(m, "matchExpressions")
		for _, e := range exprs {
			em, _ := e.(map[string]any)
			if em["key"] == "kubernetes.io/metadata.name" && em["operator"] == "In" {
				values, _, _ := unstructured.NestedStringSlice(em, "values")
				out = append(out, values...)
			}
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// secretRefs are the non-optional Secrets a pod spec reads.
func secretRefs(spec map[string]any) []string {
	var out []string
	add := func(m map[string]any, nameField string) {
		if opt, _, _ := unstructured.NestedBool(m, "optional"); opt {
			return
		}
		if n, _, _ := unstructured.NestedString(m, nameField); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, field := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(spec, field)
		for _, c := range cs {
			cm := c.(map[string]any)
			env, _, _ := unstructured.NestedSlice(cm, "env")
			for _, e := range env {
				if ref, ok, _ := unstructured.NestedMap(e.(map[string]any), "valueFrom", "secretKeyRef"); ok {
					add(ref, "name")
				}
			}
			envFrom, _, _ := unstructured.NestedSlice(cm, "envFrom")
			for _, e := range envFrom {
				if ref, ok, _ := unstructured.NestedMap(e.(map[string]any), "secretRef"); ok {
					add(ref, "name")
				}
			}
		}
	}
	vols, _, _ := unstructured.NestedSlice(spec, "volumes")
	for _, v := range vols {
		if ref, ok, _ := unstructured.NestedMap(v.(map[string]any), "secret"); ok {
			add(ref, "secretName")
		}
	}
	return out
}

// checkWorkloadSettings: settings whose wrong value only shows under load or
// during a rollout: GOMEMLIMIT at about 90% of the memory limit, a drain
// delay that outlasts endpoint propagation, a grace period that covers the
// shutdown, and Grafana not downloading plugins its egress policy blocks.
func checkWorkloadSettings(_ context.Context, in *Inputs) ([]Finding, string, error) {
	var fs []Finding
	n := 0
	for _, where := range in.Rendered.Order {
		for _, o := range in.Rendered.Objects[where] {
			spec, ok := podSpec(o.Unstructured)
			if !ok {
				continue
			}
			report := func(format string, args ...any) {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(format, args...)})
			}
			grace, hasGrace, _ := unstructured.NestedInt64(spec, "terminationGracePeriodSeconds")
			if !hasGrace {
				grace = 30
			}
			cs, _, _ := unstructured.NestedSlice(spec, "containers")
			for _, c := range cs {
				cm := c.(map[string]any)
				cname, _ := cm["name"].(string)
				env := envOf(cm)
				if e, ok := env["GOMEMLIMIT"]; ok {
					n++
					limit, _, _ := unstructured.NestedString(cm, "resources", "limits", "memory")
					if msg := judgeMemLimit(e, limit); msg != "" {
						report("container %s: %s", cname, msg)
					}
				}
				if e, ok := env["ML_INFERENCE_DRAIN_DELAY"]; ok {
					n++
					drain, err := time.ParseDuration(stringValue(e))
					shutdown, _ := time.ParseDuration(stringValue(env["ML_INFERENCE_SHUTDOWN_TIMEOUT"]))
					switch {
					case err != nil:
						report("container %s: ML_INFERENCE_DRAIN_DELAY %q is not a duration", cname, stringValue(e))
					case drain < 10*time.Second:
						report("container %s: ML_INFERENCE_DRAIN_DELAY is %s; endpoint removal takes 10-15 s to reach every proxy, so requests would still arrive after the server stops (want >= 10s)", cname, drain)
					case time.Duration(grace)*time.Second < drain+shutdown+5*time.Second:
						report("container %s: terminationGracePeriodSeconds %d is shorter than the drain delay %s + shutdown timeout %s + 5 s of trace flush: the kubelet kills the pod mid-drain", cname, grace, drain, shutdown)
					}
				}
				if img, _, _ := unstructured.NestedString(cm, "image"); strings.HasPrefix(img, "grafana/grafana") || strings.Contains(img, "/grafana/grafana") {
					n++
					if stringValue(env["GF_PLUGINS_PREINSTALL_DISABLED"]) != "true" {
						report("container %s: Grafana 12 downloads preinstalled plugins from the internet at start, which its egress policy blocks: set GF_PLUGINS_PREINSTALL_DISABLED=true", cname)
					}
				}
			}
		}
	}
	return fs, plural(n, "setting", "settings") + " checked (GOMEMLIMIT, drain delay, Grafana plugins)", nil
}

func envOf(c map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	env, _, _ := unstructured.NestedSlice(c, "env")
	for _, e := range env {
		m := e.(map[string]any)
		if n, ok := m["name"].(string); ok {
			out[n] = m
		}
	}
	return out
}

func stringValue(e map[string]any) string {
	v, _ := e["value"].(string)
	return v
}

// judgeMemLimit: GOMEMLIMIT must be a literal at most 95% of the
// container's memory limit (about 90% is the rule; a lower value with a
// reason, like the collector's below its memory_limiter, is allowed down to
// half).
func judgeMemLimit(e map[string]any, limit string) string {
	if _, from := e["valueFrom"]; from {
		return "GOMEMLIMIT comes from valueFrom (resourceFieldRef limits.memory is 100% of the limit): the heap may grow to the limit and the OOM killer acts before the GC; set about 90% of it"
	}
	if limit == "" {
		return "GOMEMLIMIT is set but the container has no memory limit to relate it to"
	}
	lim, err := resource.ParseQuantity(limit)
	if err != nil {
		return fmt.Sprintf("memory limit %q does not parse", limit)
	}
	v := stringValue(e)
	bytes, err := goMemBytes(v)
	if err != nil {
		return fmt.Sprintf("GOMEMLIMIT %q: %v", v, err)
	}
	ratio := float64(bytes) / float64(lim.Value())
	switch {
	case ratio > 0.95:
		return fmt.Sprintf("GOMEMLIMIT %s is %.0f%% of the memory limit %s; want about 90%%: room for what the Go runtime does not count (stacks, the binary), or the OOM killer acts before the GC", v, ratio*100, limit)
	case ratio < 0.5:
		return fmt.Sprintf("GOMEMLIMIT %s is %.0f%% of the memory limit %s; want about 90%%: below half, the GC runs hard while most of the limit goes unused", v, ratio*100, limit)
	}
	return ""
}

// goMemBytes parses a GOMEMLIMIT value as the Go runtime does: a number of
// bytes with an optional B, KiB, MiB, GiB or TiB suffix.
func goMemBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want <bytes>[B|KiB|MiB|GiB|TiB] as the Go runtime reads it")
	}
	return n * mult, nil
}

// app is an Application of this repository, as the CRD check reads it.
type app struct {
	where, ref, path string
	syncOptions      []string
}

func applications(in *Inputs) []app {
	var out []app
	seen := map[string]bool{}
	for _, where := range in.Rendered.Order {
		for _, o := range in.Rendered.Objects[where] {
			if !gitops.IsArgo(o.Unstructured, "Application") || seen[o.Ref()] {
				continue
			}
			for _, s := range gitops.SourcesFrom(o.Unstructured, in.Repo.RepoURL) {
				if !gitops.HasKustomization(filepath.Join(in.Repo.Root, s.Path)) {
					continue
				}
				seen[o.Ref()] = true
				opts, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "syncPolicy", "syncOptions")
				out = append(out, app{where: where, ref: o.Ref(), path: s.Path, syncOptions: opts})
			}
		}
	}
	return out
}

// crdGroupKind is "Kind.group" of the kind a CRD object defines, or "".
func crdGroupKind(o render.Object) string {
	if o.GetKind() != "CustomResourceDefinition" {
		return ""
	}
	group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
	return schema.GroupKind{Group: group, Kind: kind}.String()
}

// builtIn reports whether the API group is served by kube-apiserver itself.
func builtIn(group string) bool {
	switch group {
	case "apiextensions.k8s.io", "apiregistration.k8s.io":
		return true
	}
	for _, gv := range scheme.Scheme.PrioritizedVersionsAllGroups() {
		if gv.Group == group {
			return true
		}
	}
	return false
}
