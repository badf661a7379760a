package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

// StoreNamespace is the namespace of the local secret store
// (infrastructure/secrets/kubernetes): ExternalSecrets read its Secrets.
const StoreNamespace = "secret-store"

// Client connects to the cluster in kubeconfig.
func Client(kubeconfig string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return ClientFor(cfg)
}

// ClientFor connects with a REST config (tests: the simulated cluster).
func ClientFor(cfg *rest.Config) (client.Client, error) {
	return client.New(cfg, client.Options{})
}

// Generated is what GenerateSecrets did with one store Secret.
type Generated struct {
	Name    string
	Created bool // false: it existed and was left alone
}

// GenerateSecrets creates every Secret of the local store that
// platform.yaml declares (ADR-004: on a cluster without a cloud secret
// manager, bootstrap generates them), with random passwords from random, a
// bcrypt hash where a key asks for one and the generation time as mtime.
// Existing Secrets are left as they are (rotation is the runbook's job), so
// running bootstrap twice changes nothing. The namespace is created with the
// labels its manifest in Git gives it, which the external-secrets-config
// Application then adopts.
func GenerateSecrets(ctx context.Context, cl client.Client, specs []gitops.StoreSecret, random io.Reader, now time.Time) ([]Generated, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: StoreNamespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"app":                                "platform-secrets", "env": "platform", "owner": "ml-platform",
	}}}
	if err := cl.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", StoreNamespace, err)
	}
	var out []Generated
	for _, spec := range specs {
		data, err := generate(spec, random, now)
		if err != nil {
			return out, err
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: StoreNamespace, Labels: map[string]string{
				"app": "platform-secrets", "env": "platform", "owner": "ml-platform",
				"app.kubernetes.io/managed-by": "platformctl-bootstrap",
			}},
			Type: corev1.SecretTypeOpaque,
			Data: data,
		}
		err = cl.Create(ctx, s)
		switch {
		case apierrors.IsAlreadyExists(err):
			out = append(out, Generated{Name: spec.Name})
		case err != nil:
			return out, fmt.Errorf("create Secret %s/%s: %w", StoreNamespace, spec.Name, err)
		default:
			out = append(out, Generated{Name: spec.Name, Created: true})
		}
	}
	return out, nil
}

// generate makes one Secret's data. Keys that derive from another key
// (bcrypt:<key>) are made after the keys they derive from.
func generate(spec gitops.StoreSecret, random io.Reader, now time.Time) (map[string][]byte, error) {
	keys := make([]string, 0, len(spec.Keys))
	for k := range spec.Keys {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		di, dj := strings.HasPrefix(spec.Keys[keys[i]], "bcrypt:"), strings.HasPrefix(spec.Keys[keys[j]], "bcrypt:")
		if di != dj {
			return dj
		}
		return keys[i] < keys[j]
	})
	data := map[string][]byte{}
	for _, k := range keys {
		gen := spec.Keys[k]
		switch {
		case gen == "password":
			b := make([]byte, 24)
			if _, err := io.ReadFull(random, b); err != nil {
				return nil, fmt.Errorf("secret %s key %s: %w", spec.Name, k, err)
			}
			data[k] = []byte(base64.RawURLEncoding.EncodeToString(b))
		case gen == "fernet":
			// A Fernet key: 32 random bytes, URL-safe base64 with padding
			// (what Python's cryptography.fernet.Fernet accepts).
			b := make([]byte, 32)
			if _, err := io.ReadFull(random, b); err != nil {
				return nil, fmt.Errorf("secret %s key %s: %w", spec.Name, k, err)
			}
			data[k] = []byte(base64.URLEncoding.EncodeToString(b))
		case gen == "mtime":
			data[k] = []byte(now.UTC().Format(time.RFC3339))
		case strings.HasPrefix(gen, "literal:"):
			data[k] = []byte(strings.TrimPrefix(gen, "literal:"))
		case strings.HasPrefix(gen, "bcrypt:"):
			from := strings.TrimPrefix(gen, "bcrypt:")
			plain, ok := data[from]
			if !ok {
				return nil, fmt.Errorf("secret %s key %s: bcrypt of %q, which is not a generated key of it", spec.Name, k, from)
			}
			h, err := bcrypt.GenerateFromPassword(plain, bcrypt.DefaultCost)
			if err != nil {
				return nil, fmt.Errorf("secret %s key %s: %w", spec.Name, k, err)
			}
			data[k] = h
		default:
			return nil, fmt.Errorf("secret %s key %s: unknown generator %q (want password, fernet, mtime, literal:<v> or bcrypt:<key>)", spec.Name, k, gen)
		}
	}
	return data, nil
}

// Install server-side applies rendered objects the way Argo CD orders a
// sync's first steps: Namespaces and CRDs first (waiting until each CRD is
// established), then everything else. Field manager argocd-controller, the
// one Argo CD's own server-side sync uses, so the argocd Application adopts
// these objects without conflicts.
func Install(ctx context.Context, cl client.Client, objs []render.Object, progress io.Writer) error {
	first := func(o render.Object) int {
		switch o.GetKind() {
		case "Namespace":
			return 0
		case "CustomResourceDefinition":
			return 1
		case "PriorityClass":
			return 2
		}
		return 3
	}
	sorted := slices.Clone(objs)
	slices.SortStableFunc(sorted, func(a, b render.Object) int { return first(a) - first(b) })
	for _, o := range sorted {
		u := o.DeepCopy()
		if err := cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("argocd-controller"), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s: %w", o.Ref(), err)
		}
		if o.GetKind() == "CustomResourceDefinition" {
			if err := WaitEstablished(ctx, cl, o.GetName()); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(progress, "applied %d objects (server-side, field manager argocd-controller)\n", len(sorted))
	return nil
}

// WaitEstablished waits (up to a minute, or ctx) until the API server
// serves the CustomResourceDefinition name (condition Established), as
// Argo CD does before it applies the kind's objects.
func WaitEstablished(ctx context.Context, cl client.Client, name string) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		if err := cl.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// RepositorySecret is the Argo CD repository Secret that lets Argo CD clone
// a private fork over HTTPS with a token (GitHub: a fine-grained token with
// read access to the repository's contents).
func RepositorySecret(repo, username, token string) (*corev1.Secret, error) {
	if err := validRepo(repo); err != nil {
		return nil, err
	}
	if strings.TrimSpace(token) == "" {
		return nil, fmt.Errorf("the repository token is empty")
	}
	sum := sha256.Sum256([]byte(repo))
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "repo-" + hex.EncodeToString(sum[:])[:12],
			Namespace: "argocd",
			Labels:    map[string]string{"argocd.argoproj.io/secret-type": "repository", "owner": "ml-platform"},
		},
		Type: corev1.SecretTypeOpaque,
		StringData: map[string]string{
			"type": "git", "url": repo, "username": username, "password": strings.TrimSpace(token),
		},
	}, nil
}

// ApplySecret creates or replaces s.
func ApplySecret(ctx context.Context, cl client.Client, s *corev1.Secret) error {
	err := cl.Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		live := &corev1.Secret{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(s), live); err != nil {
			return err
		}
		s.ResourceVersion = live.ResourceVersion
		err = cl.Update(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("apply Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}
