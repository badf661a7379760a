package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/verify"
)

func verifyCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl verify", stderr)
	root := fs.String("root", ".", "repository root")
	cfgPath := fs.String("config", "", "verify configuration (default ROOT/"+verify.ConfigFile+")")
	assets := fs.String("assets", "", "directory with kube-apiserver and etcd (default $KUBEBUILDER_ASSETS; hack/tools.sh kubebuilder-assets prints it)")
	crdDirs := fs.String("crd-dirs", "", "colon-separated directories of CRDs to install (hack/tools.sh crds lists them)")
	skipServer := fs.Bool("skip-server", false, "render and run the structural checks only, without the API server")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	if *assets == "" {
		*assets = getenv("KUBEBUILDER_ASSETS")
	}
	var dirs []string
	for d := range strings.SplitSeq(*crdDirs, string(filepath.ListSeparator)) {
		if d = strings.TrimSpace(d); d != "" {
			dirs = append(dirs, d)
		}
	}
	_, err := verify.Run(ctx, verify.Options{Root: *root, ConfigPath: *cfgPath, AssetsDir: *assets, CRDDirs: dirs, SkipServer: *skipServer}, stdout)
	return err
}
