package mlflow

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
)

// Artifacts go through the tracking server's proxy (mlflow server
// --serve-artifacts), so a client needs no credentials for the store behind
// it. A run's artifact URI (RunInfo.ArtifactURI) and a model version's source
// are then mlflow-artifacts URIs, and a file below one maps onto the proxy's
// endpoint by its path:
//
//	mlflow-artifacts:/1/<run-id>/artifacts  +  model/weights.bin
//	PUT|GET {tracking URI}/api/2.0/mlflow-artifacts/artifacts/1/<run-id>/artifacts/model/weights.bin
//	GET     {tracking URI}/api/2.0/mlflow-artifacts/artifacts?path=1/<run-id>/artifacts/model  (list)
//
// (mlflow/store/artifact/mlflow_artifacts_repo.py resolve_uri). A URI naming
// a host (mlflow-artifacts://other:5000/...) points at another server; the
// client refuses it rather than send requests wherever a registry entry says.

const artifactsEndpoint = "/api/2.0/mlflow-artifacts/artifacts"

// artifactRoot is the proxy path of an mlflow-artifacts URI ("" for its
// root).
func artifactRoot(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("%w: artifact URI %q: %v", ErrInvalidArgument, uri, err)
	}
	if u.Scheme != "mlflow-artifacts" || u.Opaque != "" {
		return "", fmt.Errorf("%w: artifact URI %q: only mlflow-artifacts:/... (artifacts the tracking server proxies) is supported", ErrInvalidArgument, uri)
	}
	if u.Host != "" || u.User != nil {
		return "", fmt.Errorf("%w: artifact URI %q names the host %q: only artifacts proxied by this tracking server are supported", ErrInvalidArgument, uri, u.Host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: artifact URI %q has a query or fragment", ErrInvalidArgument, uri)
	}
	root := strings.Trim(u.Path, "/")
	if err := checkRelPath(root); err != nil {
		return "", fmt.Errorf("%w: artifact URI %q: %v", ErrInvalidArgument, uri, err)
	}
	return root, nil
}

// checkRelPath accepts a relative slash-separated path whose segments are
// plain names: no "", ".", ".." or backslash (the server refuses them too,
// but a client should never build such a URL).
func checkRelPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is absolute", p)
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return fmt.Errorf("path %q has an empty, . or .. segment", p)
		case strings.ContainsAny(seg, "\\\x00"):
			return fmt.Errorf("path %q has a backslash or NUL", p)
		}
	}
	return nil
}

// artifactPath joins an artifact URI and a relative path into the path the
// proxy knows the file by.
func artifactPath(artifactURI, relPath string) (string, error) {
	root, err := artifactRoot(artifactURI)
	if err != nil {
		return "", err
	}
	if err := checkRelPath(relPath); err != nil {
		return "", fmt.Errorf("%w: artifact %v", ErrInvalidArgument, err)
	}
	return path.Join(root, relPath), nil
}

// ArtifactURL is the proxy endpoint of the file relPath below artifactURI:
// PUT uploads it, GET downloads it.
func (c *Client) ArtifactURL(artifactURI, relPath string) (*url.URL, error) {
	if relPath == "" {
		return nil, fmt.Errorf("mlflow: %w: no file named below %s", ErrInvalidArgument, artifactURI)
	}
	p, err := artifactPath(artifactURI, relPath)
	if err != nil {
		return nil, fmt.Errorf("mlflow: %w", err)
	}
	return c.endpoint(artifactsEndpoint + "/" + p), nil
}

// UploadArtifact stores the bytes of r as the file relPath below artifactURI
// (e.g. a run's ArtifactURI and "model/weights.bin"), replacing any file
// there. size is r's length, or -1 if unknown (the body is then sent
// chunked).
func (c *Client) UploadArtifact(ctx context.Context, artifactURI, relPath string, r io.Reader, size int64) error {
	u, err := c.ArtifactURL(artifactURI, relPath)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), r)
	if err != nil {
		return fmt.Errorf("mlflow: upload %s: %w", relPath, err)
	}
	if size >= 0 {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	} else {
		req.ContentLength = -1
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req)
	if err != nil {
		return fmt.Errorf("mlflow: upload %s to %s: %w", relPath, artifactURI, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return nil
}

// UploadFile uploads the local file localPath as relPath below artifactURI.
func (c *Client) UploadFile(ctx context.Context, artifactURI, relPath, localPath string) error {
	f, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("mlflow: upload %s: %w", relPath, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mlflow: upload %s: %w", relPath, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("mlflow: upload %s: %w: %s is not a regular file", relPath, ErrInvalidArgument, localPath)
	}
	return c.UploadArtifact(ctx, artifactURI, relPath, f, st.Size())
}

// DownloadArtifact streams the file relPath below artifactURI into w and
// returns how many bytes it wrote. A missing file is ErrNotFound; a
// connection that breaks mid-file is a *TransportError (w then holds a
// prefix of the file).
func (c *Client) DownloadArtifact(ctx context.Context, artifactURI, relPath string, w io.Writer) (int64, error) {
	u, err := c.ArtifactURL(artifactURI, relPath)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("mlflow: download %s: %w", relPath, err)
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, fmt.Errorf("mlflow: download %s from %s: %w", relPath, artifactURI, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		// A short body (the server died) surfaces here as io.ErrUnexpectedEOF.
		return n, fmt.Errorf("mlflow: download %s from %s after %d bytes: %w", relPath, artifactURI, n,
			&TransportError{Method: req.Method, URL: u.Redacted(), Err: err})
	}
	return n, nil
}

// ListArtifacts lists the directory relPath ("" for the root) below
// artifactURI, one level deep, sorted by path; paths are relative to
// artifactURI. A directory that does not exist lists empty, as in MLflow.
func (c *Client) ListArtifacts(ctx context.Context, artifactURI, relPath string) ([]FileInfo, error) {
	p, err := artifactPath(artifactURI, relPath)
	if err != nil {
		return nil, fmt.Errorf("mlflow: list artifacts: %w", err)
	}
	var out struct {
		Files []FileInfo `json:"files"`
	}
	if err := c.get(ctx, artifactsEndpoint, url.Values{"path": {p}}, &out); err != nil {
		return nil, fmt.Errorf("mlflow: list artifacts of %s under %q: %w", artifactURI, relPath, err)
	}
	files := out.Files[:0]
	for _, f := range out.Files {
		if err := checkRelPath(f.Path); err != nil || f.Path == "" {
			return nil, fmt.Errorf("mlflow: list artifacts of %s under %q: the server listed an unsafe path: %q", artifactURI, relPath, f.Path)
		}
		f.Path = path.Join(relPath, f.Path)
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}
