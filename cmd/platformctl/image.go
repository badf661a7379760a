package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/image"
)

// imageBuild builds the image without a container runtime (internal/image)
// and writes an OCI layout of the multi-platform index plus a tarball of one
// platform for `kind load image-archive`.
func imageBuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl image build", stderr)
	root := fs.String("root", ".", "repository root (the Go module)")
	out := fs.String("out", filepath.Join("bin", "image"), "output directory: oci/ (OCI layout) and image.tar")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms of the index")
	tag := fs.String("tag", "ghcr.io/ml-platform/ml-inference:dev", "image references of the tarball, comma-separated (what kind loads and pods name)")
	tarPlatform := fs.String("tarball-platform", "linux/"+runtime.GOARCH, "platform written to image.tar")
	version := fs.String("version", "dev", "version stamped into the binaries and the OCI labels")
	revision := fs.String("revision", "unknown", "Git commit, for the binaries and org.opencontainers.image.revision")
	source := fs.String("source", "https://github.com/ml-platform/platform", "org.opencontainers.image.source")
	created := fs.String("created", "", "Unix time of every timestamp in the image (default: $SOURCE_DATE_EPOCH, else 0)")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	if *created == "" {
		*created = getenv("SOURCE_DATE_EPOCH")
	}
	when := time.Unix(0, 0).UTC()
	if *created != "" {
		sec, err := strconv.ParseInt(*created, 10, 64)
		if err != nil {
			return fmt.Errorf("--created %q: want a Unix time in seconds", *created)
		}
		when = time.Unix(sec, 0).UTC()
	}
	plats := strings.Split(*platforms, ",")
	start := time.Now()
	res, err := image.Build(ctx, image.Options{
		Root: *root,
		Binaries: []image.Binary{
			{Name: "ml-inference", Package: "./cmd/ml-inference"},
			{Name: "platformctl", Package: "./cmd/platformctl"},
		},
		Models:    "models",
		Platforms: plats,
		Version:   *version, Revision: *revision, Source: *source,
		Created: when,
	})
	if err != nil {
		return err
	}
	layoutDir := filepath.Join(*out, "oci")
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := image.WriteLayout(layoutDir, res.Index); err != nil {
		return err
	}
	digest, err := res.Index.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "index %s (%s) -> %s\n", digest, strings.Join(plats, ", "), layoutDir)
	for _, p := range plats {
		size, err := imageSize(res.Images[p])
		if err != nil {
			return err
		}
		d, _ := res.Images[p].Digest()
		fmt.Fprintf(stdout, "  %-12s %s  %.1f MiB compressed\n", p, d, float64(size)/(1<<20))
	}
	img, ok := res.Images[*tarPlatform]
	if !ok {
		return fmt.Errorf("--tarball-platform %s is not one of --platforms %s", *tarPlatform, *platforms)
	}
	tarFile := filepath.Join(*out, "image.tar")
	if err := image.WriteTarball(tarFile, strings.Split(*tag, ","), img); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tarball %s (%s, %s) in %.1fs\n", tarFile, *tag, *tarPlatform, time.Since(start).Seconds())
	return nil
}

// imageSize is the compressed size of the image's layers and config.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// imageName is the image this repository publishes (platform.yaml images).
const imageName = "ghcr.io/ml-platform/ml-inference"

// imageTag prints the tag an environment deploys.
func imageTag(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl image tag", stderr)
	root := fs.String("root", ".", "repository root")
	env := fs.String("env", "dev", "environment (infrastructure/platform.yaml)")
	dir := fs.String("dir", "", "a kustomization directory instead of an environment, e.g. infrastructure/base/ml-platform (relative to --root)")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	path := filepath.Join(*root, *dir)
	if *dir == "" {
		repo, err := gitops.Load(*root)
		if err != nil {
			return err
		}
		e, err := repo.Environment(*env)
		if err != nil {
			return err
		}
		path = e.Path
	}
	tag, err := gitops.ImageTag(path, imageName)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tag)
	return nil
}

// imageSetTag sets the tag an environment deploys (the change a deploy or
// promotion pull request makes).
func imageSetTag(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl image set-tag", stderr)
	root := fs.String("root", ".", "repository root")
	env := fs.String("env", "", "environment (infrastructure/platform.yaml)")
	tag := fs.String("tag", "", "the tag, e.g. sha-0123456789ab")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	if *env == "" || *tag == "" {
		return fmt.Errorf("--env and --tag are required")
	}
	repo, err := gitops.Load(*root)
	if err != nil {
		return err
	}
	e, err := repo.Environment(*env)
	if err != nil {
		return err
	}
	return gitops.SetImageTag(e.Path, imageName, *tag)
}
