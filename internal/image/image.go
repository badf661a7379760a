// Package image builds the platform's container image without a container
// runtime: the static Go binaries (ml-inference, and platformctl, which the
// judge runs in the cluster) are cross-compiled per platform and laid, with
// the models and the few files a static binary needs, onto an empty base
// (FROM scratch) as OCI layers with go-containerregistry. The result is an
// OCI image index (linux/amd64 and linux/arm64) written as an OCI layout,
// plus a single-platform tarball that `kind load image-archive` takes.
//
// Why scratch and not a distroless base pinned by digest: pulling a base
// needs a registry, and the build must work on a machine that reaches only
// the Go module proxy. scratch plus three files is what distroless/static
// holds for a static binary anyway: /etc/passwd and /etc/group with the
// nonroot user 65532, and CA certificates, taken from the pinned Go module
// golang.org/x/crypto/x509roots/fallback (Mozilla's NSS store, the same
// source Debian's ca-certificates uses). No tzdata: nothing in the image
// formats local times (logs are UTC).
//
// Builds are reproducible: every file and the config carry one timestamp
// (SOURCE_DATE_EPOCH, the commit time in `make image`), so the same commit
// gives the same digests.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// User is the numeric non-root user and group the image runs as (the
// "nonroot" user of distroless images); the manifests' securityContext
// names the same id.
const User = 65532

// Binary is one Go main package laid into the image at /Name.
type Binary struct {
	Name    string // file name in the image, e.g. ml-inference
	Package string // e.g. ./cmd/ml-inference
}

// Options say what to build.
type Options struct {
	// Root is the module root (go build runs there; Models is relative to it).
	Root string
	// Binaries to build; the first is the entrypoint.
	Binaries []Binary
	// Models is a directory copied to /models (the default models dir).
	Models string
	// Platforms like linux/amd64.
	Platforms []string
	// Version and Revision are stamped into the binaries (main.version,
	// main.revision) and the OCI labels; Source is the repository URL.
	Version, Revision, Source string
	// Created is every timestamp in the image (reproducible builds).
	Created time.Time
	// GoBuild runs `go build`; nil uses the go command on PATH.
	GoBuild func(ctx context.Context, dir string, env []string, args ...string) error
}

// Result is what Build made.
type Result struct {
	Index  v1.ImageIndex
	Images map[string]v1.Image // by platform
}

// Build cross-compiles the binaries for every platform and assembles the
// image index.
func Build(ctx context.Context, o Options) (*Result, error) {
	if len(o.Binaries) == 0 || len(o.Platforms) == 0 {
		return nil, fmt.Errorf("image: at least one binary and one platform are required")
	}
	if o.GoBuild == nil {
		o.GoBuild = goBuild
	}
	base, err := baseLayer(o.Created)
	if err != nil {
		return nil, err
	}
	var models v1.Layer
	if o.Models != "" {
		if models, err = dirLayer(filepath.Join(o.Root, o.Models), "models", o.Created); err != nil {
			return nil, err
		}
	}
	work, err := os.MkdirTemp("", "image-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	res := &Result{Images: map[string]v1.Image{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil || plat.OS != "linux" || plat.Architecture == "" {
			return nil, fmt.Errorf("image: platform %q: want linux/<arch>", p)
		}
		files := map[string]string{}
		for _, b := range o.Binaries {
			out := filepath.Join(work, plat.Architecture, b.Name)
			env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + plat.Architecture}
			if plat.Variant != "" && plat.Architecture == "arm" {
				env = append(env, "GOARM="+strings.TrimPrefix(plat.Variant, "v"))
			}
			ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.revision=%s", o.Version, o.Revision)
			if err := o.GoBuild(ctx, o.Root, env, "build", "-trimpath", "-ldflags", ldflags, "-o", out, b.Package); err != nil {
				return nil, fmt.Errorf("image: build %s for %s: %w", b.Package, p, err)
			}
			files[b.Name] = out
		}
		bins, err := binaryLayer(files, o.Created)
		if err != nil {
			return nil, err
		}
		layers := []v1.Layer{base}
		if models != nil {
			layers = append(layers, models)
		}
		layers = append(layers, bins)
		img, err := assemble(layers, *plat, o)
		if err != nil {
			return nil, fmt.Errorf("image: %s: %w", p, err)
		}
		res.Images[p] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: plat, Annotations: labels(o)},
		})
	}
	res.Index = mutate.Annotations(idx, labels(o)).(v1.ImageIndex)
	return res, nil
}

// labels are the OCI annotations of the image, its index and its config.
func labels(o Options) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":    "ml-inference",
		"org.opencontainers.image.created":  o.Created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	if o.Source != "" {
		l["org.opencontainers.image.source"] = o.Source
	}
	return l
}

func assemble(layers []v1.Layer, plat v1.Platform, o Options) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range layers {
		var err error
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer}); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Created = v1.Time{Time: o.Created}
	cf.Config.User = fmt.Sprintf("%d:%d", User, User)
	cf.Config.WorkingDir = "/"
	cf.Config.Entrypoint = []string{"/" + o.Binaries[0].Name}
	cf.Config.Env = []string{
		"PATH=/",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
	}
	if o.Models != "" {
		cf.Config.Env = append(cf.Config.Env, "ML_INFERENCE_MODELS_DIR=/models")
	}
	cf.Config.ExposedPorts = map[string]struct{}{"8000/tcp": {}}
	cf.Config.Labels = labels(o)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: o.Created})
}

// baseLayer is what scratch lacks for a static binary: the user, and CA
// certificates for outgoing TLS (OTLP, MLflow over HTTPS).
func baseLayer(created time.Time) (v1.Layer, error) {
	var certs bytes.Buffer
	n := 0
	for root := range bundle.Roots() {
		// A PEM file cannot carry NSS's distrust-after constraints; a root
		// that has one is left out rather than trusted without it.
		if root.Constraint != nil {
			continue
		}
		if err := pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, err
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("image: the CA bundle is empty")
	}
	return layerOf(created, []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", User, User)},
		{name: "etc/group", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", User)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs.Bytes()},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, uid: User},
		// Writable scratch space for a process that needs one; the
		// manifests run with a read-only root filesystem and mount nothing
		// here, so ml-inference writes nothing.
		{name: "tmp/", mode: 0o1777, dir: true},
	})
}

func binaryLayer(files map[string]string, created time.Time) (v1.Layer, error) {
	var es []entry
	for name, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		es = append(es, entry{name: name, mode: 0o755, data: data})
	}
	return layerOf(created, es)
}

// dirLayer copies dir to /prefix, read-only for everyone but root.
func dirLayer(dir, prefix string, created time.Time) (v1.Layer, error) {
	es := []entry{{name: prefix + "/", mode: 0o755, dir: true}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		if d.IsDir() {
			es = append(es, entry{name: name + "/", mode: 0o755, dir: true})
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files and directories go into the image", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		es = append(es, entry{name: name, mode: 0o644, data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return layerOf(created, es)
}

type entry struct {
	name string
	mode int64
	dir  bool
	uid  int
	data []byte
}

// layerOf writes the entries, sorted, as one uncompressed tar and makes it a
// gzip layer (go-containerregistry compresses deterministically).
func layerOf(created time.Time, es []entry) (v1.Layer, error) {
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: created, Uid: e.uid, Gid: e.uid, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// WriteLayout writes the index as an OCI image layout in dir (replacing it).
func WriteLayout(dir string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if _, err := layout.Write(dir, idx); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return nil
}

// WriteTarball writes one platform's image as a tarball tagged with every
// ref, the format `kind load image-archive` and `docker load` take.
func WriteTarball(file string, refs []string, img v1.Image) error {
	tags := map[name.Tag]v1.Image{}
	for _, ref := range refs {
		tag, err := name.NewTag(ref)
		if err != nil {
			return fmt.Errorf("image reference %q: %w", ref, err)
		}
		tags[tag] = img
	}
	if len(tags) == 0 {
		return fmt.Errorf("write %s: no image reference", file)
	}
	if err := tarball.MultiWriteToFile(file, tags); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

func goBuild(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}
