package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/bootstrap"
	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

// bootstrapCmd points a cluster at a fork. With --kubeconfig it can also do
// the steps before the root's first sync, each idempotent: install Argo CD
// from infrastructure/argocd/install (the argocd Application's own path),
// generate the local secret store's Secrets, and give Argo CD a token for a
// private fork.
func bootstrapCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl bootstrap", stderr)
	root := fs.String("root", ".", "repository root")
	repo := fs.String("repo", "", "Git URL of the repository (your fork) Argo CD syncs from")
	revision := fs.String("revision", "main", "branch, tag or commit to sync")
	path := fs.String("path", "infrastructure/argocd/apps", "the root Application's path: infrastructure/argocd/apps, or infrastructure/local/apps for a laptop (no prod)")
	kubeconfig := fs.String("kubeconfig", "", "apply to this cluster; empty: print the root Application")
	install := fs.Bool("install-argocd", false, "first install Argo CD from platform.yaml's bootstrap kustomization (server-side, as the argocd Application will sync it)")
	secrets := fs.Bool("secrets", false, "generate the local secret store's Secrets (platform.yaml secrets) that do not exist yet")
	tokenFile := fs.String("repo-token-file", "", "a file holding a token that can read a private --repo (stored as an Argo CD repository Secret)")
	username := fs.String("repo-username", "git", "the user name sent with --repo-token-file")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	app, err := bootstrap.RootApplication(filepath.Join(*root, gitops.RootFile), *repo, *revision)
	if err != nil {
		return err
	}
	if !gitops.HasKustomization(filepath.Join(*root, *path)) {
		return fmt.Errorf("--path %s: no kustomization in the repository", *path)
	}
	_ = unstructured.SetNestedField(app.Object, filepath.ToSlash(*path), "spec", "source", "path")
	if *kubeconfig == "" {
		if *install || *secrets || *tokenFile != "" {
			return fmt.Errorf("--install-argocd, --secrets and --repo-token-file need --kubeconfig")
		}
		data, err := bootstrap.YAML(app)
		if err != nil {
			return err
		}
		_, err = stdout.Write(data)
		return err
	}
	cl, err := bootstrap.Client(*kubeconfig)
	if err != nil {
		return err
	}
	r, err := gitops.Load(*root)
	if err != nil {
		return err
	}
	if *install {
		objs, err := renderUpstream(r, r.Bootstrap)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "installing Argo CD from %s: ", r.Rel(r.Bootstrap))
		if err := bootstrap.Install(ctx, cl, objs, stdout); err != nil {
			return err
		}
	}
	if *secrets {
		gen, err := bootstrap.GenerateSecrets(ctx, cl, r.Secrets, rand.Reader, time.Now())
		if err != nil {
			return err
		}
		for _, g := range gen {
			state := "exists, left as it is"
			if g.Created {
				state = "generated"
			}
			fmt.Fprintf(stdout, "secret %s/%s: %s\n", bootstrap.StoreNamespace, g.Name, state)
		}
		fmt.Fprintf(stdout, "  read one with: kubectl -n %s get secret NAME -o jsonpath='{.data.password}' | base64 -d\n", bootstrap.StoreNamespace)
	}
	if *tokenFile != "" {
		token, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("--repo-token-file: %w", err)
		}
		s, err := bootstrap.RepositorySecret(*repo, *username, string(token))
		if err != nil {
			return err
		}
		if err := bootstrap.ApplySecret(ctx, cl, s); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "repository credentials for %s: Secret argocd/%s\n", *repo, s.Name)
	}
	if err := bootstrap.Apply(ctx, *kubeconfig, app); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied Application %s/%s: Argo CD now syncs %s at %s (%s)\n", app.GetNamespace(), app.GetName(), *repo, *revision, *path)
	return nil
}

// renderCmd prints a kustomization as Argo CD renders it, remote bases
// resolved from the pinned modules (platform.yaml upstreams), e.g. to
// install Argo CD with kubectl: platformctl render infrastructure/argocd/install
// | kubectl apply --server-side -f -.
func renderCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl render", stderr)
	root := fs.String("root", ".", "repository root")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("usage: platformctl render DIR [--root DIR]")
	}
	dir, args := args[0], args[1:]
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	r, err := gitops.Load(*root)
	if err != nil {
		return err
	}
	objs, err := renderUpstream(r, filepath.Join(*root, dir))
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

func renderUpstream(r *gitops.Repository, dir string) ([]render.Object, error) {
	ups, err := r.ResolveUpstreams()
	if err != nil {
		return nil, err
	}
	return (&gitops.Renderer{Upstreams: ups}).Build(dir)
}
