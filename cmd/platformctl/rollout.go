package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/rollout"
)

// rolloutCmd returns the command for one verb of `platformctl rollout`:
// status, promote, abort or retry the Rollout of an environment, found in
// the environment's rendered overlay (infrastructure/platform.yaml).
func rolloutCmd(verb string) func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		fs := config.NewFlagSet("platformctl rollout "+verb+" ENV", stderr)
		root := fs.String("root", ".", "repository root")
		kubeconfig := fs.String("kubeconfig", "", "the cluster's kubeconfig (empty: $KUBECONFIG, then ~/.kube/config, as kubectl)")
		kubeContext := fs.String("context", "", "the kubeconfig context (empty: its current context)")
		var full *bool
		if verb == "promote" {
			full = fs.Bool("full", false, "skip every remaining step and analysis, the judge's gate included, and go to 100% now")
		}
		env, rest := positional(args)
		if err := config.Parse(fs, "PLATFORMCTL", rest, getenv); err != nil {
			return err
		}
		if env == "" && fs.NArg() == 1 {
			env = fs.Arg(0)
		} else if fs.NArg() > 0 || env == "" {
			fs.Usage()
			return fmt.Errorf("usage: platformctl rollout %s [flags] ENV", verb)
		}
		namespace, name, err := rolloutOf(*root, env)
		if err != nil {
			return err
		}
		c, err := kubeClient(*kubeconfig, *kubeContext)
		if err != nil {
			return err
		}
		switch verb {
		case "promote":
			if err := rollout.Promote(ctx, c, namespace, name, *full); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "promoted %s/%s", namespace, name)
			if *full {
				fmt.Fprint(stdout, " to 100% (steps and analysis skipped)")
			}
			fmt.Fprintln(stdout)
		case "abort":
			if err := rollout.Abort(ctx, c, namespace, name); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "aborted %s/%s: the stable version gets every pod back; revert the Git change that started the canary (docs/runbooks/canary-aborted.md)\n", namespace, name)
		case "retry":
			if err := rollout.Retry(ctx, c, namespace, name); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "retrying %s/%s: the canary starts again from its first step\n", namespace, name)
		}
		st, err := rollout.Get(ctx, c, namespace, name)
		if err != nil {
			return err
		}
		st.Write(stdout)
		return nil
	}
}

// positional splits off the environment when it comes first
// (`rollout status staging --kubeconfig x`); flags first is what the flag
// package parses itself.
func positional(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// rolloutOf finds the one Rollout an environment's overlay renders.
func rolloutOf(root, env string) (namespace, name string, err error) {
	repo, err := gitops.Load(root)
	if err != nil {
		return "", "", err
	}
	e, err := repo.Environment(env)
	if err != nil {
		return "", "", err
	}
	objs, err := render.Build(e.Path)
	if err != nil {
		return "", "", err
	}
	var found []render.Object
	for _, o := range objs {
		if o.GroupVersionKind() == rollout.RolloutGVK {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		return "", "", fmt.Errorf("environment %s (%s) renders %d Rollouts; want exactly one", env, repo.Rel(e.Path), len(found))
	}
	return found[0].GetNamespace(), found[0].GetName(), nil
}

// kubeClient is a client for the cluster of a kubeconfig, found as kubectl
// finds it.
func kubeClient(kubeconfig, kubeContext string) (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w (pass --kubeconfig, or set KUBECONFIG)", err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	return c, nil
}
