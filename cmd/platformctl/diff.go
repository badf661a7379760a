package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/envdiff"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

func diffCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl diff ENV1 ENV2", stderr)
	root := fs.String("root", ".", "repository root")
	// Environments are positional; flags come first.
	var envs []string
	for len(args) > 0 && len(args[len(args)-1]) > 0 && args[len(args)-1][0] != '-' && len(envs) < 2 {
		envs = append([]string{args[len(args)-1]}, envs...)
		args = args[:len(args)-1]
	}
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	if len(envs) != 2 {
		return fmt.Errorf("usage: platformctl diff [--root DIR] ENV1 ENV2")
	}
	repo, err := gitops.Load(*root)
	if err != nil {
		return err
	}
	var rendered [2][]render.Object
	for i, name := range envs {
		e, err := repo.Environment(name)
		if err != nil {
			return err
		}
		if rendered[i], err = render.Build(e.Path); err != nil {
			return err
		}
	}
	envdiff.Write(stdout, envs[0], envs[1], envdiff.Diff(envs[0], rendered[0], envs[1], rendered[1]))
	return nil
}
