package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/verify"
)

func verifyCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl verify", stderr)
	root := fs.String("root", ".", "repository root")
	cfgPath := fs.String("config", "", "the repository's declaration (default ROOT/"+gitops.ConfigFile+")")
	assets := fs.String("assets", "", "directory with kube-apiserver and etcd (default $KUBEBUILDER_ASSETS; hack/tools.sh kubebuilder-assets prints it)")
	crdDirs := fs.String("crd-dirs", "", "colon-separated directories of CRDs to install (hack/tools.sh crds lists them)")
	kyverno := fs.String("kyverno-bin", "", "the pinned Kyverno CLI (default $KYVERNO_BIN; hack/tools.sh path kyverno prints it)")
	skipServer := fs.Bool("skip-server", false, "run every check but server-side validation on the API server")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	if *assets == "" {
		*assets = getenv("KUBEBUILDER_ASSETS")
	}
	if *kyverno == "" {
		*kyverno = getenv("KYVERNO_BIN")
	}
	var dirs []string
	for d := range strings.SplitSeq(*crdDirs, string(filepath.ListSeparator)) {
		if d = strings.TrimSpace(d); d != "" {
			dirs = append(dirs, d)
		}
	}
	_, err := verify.Run(ctx, verify.Options{Root: *root, ConfigPath: *cfgPath, AssetsDir: *assets, CRDDirs: dirs, KyvernoBin: *kyverno, SkipServer: *skipServer}, stdout)
	return err
}
