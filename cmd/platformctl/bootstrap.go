package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ml-platform/platform/internal/bootstrap"
	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/gitops"
)

func bootstrapCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl bootstrap", stderr)
	root := fs.String("root", ".", "repository root")
	repo := fs.String("repo", "", "Git URL of the repository (your fork) Argo CD syncs from")
	revision := fs.String("revision", "main", "branch, tag or commit to sync")
	kubeconfig := fs.String("kubeconfig", "", "apply the root Application to this cluster (Argo CD must be installed); empty: print it")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	app, err := bootstrap.RootApplication(filepath.Join(*root, gitops.RootFile), *repo, *revision)
	if err != nil {
		return err
	}
	if *kubeconfig == "" {
		data, err := bootstrap.YAML(app)
		if err != nil {
			return err
		}
		_, err = stdout.Write(data)
		return err
	}
	if err := bootstrap.Apply(ctx, *kubeconfig, app); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied Application %s/%s: Argo CD now syncs %s at %s\n", app.GetNamespace(), app.GetName(), *repo, *revision)
	return nil
}
