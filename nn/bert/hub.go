package bert

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sentibench/sentibench/internal/atomicfile"
	"github.com/sentibench/sentibench/internal/fetch"
	"github.com/sentibench/sentibench/internal/progress"
)

// ResolveOptions configure Resolve. Zero values take the defaults.
type ResolveOptions struct {
	// CacheDir is where hub models are kept (default DefaultModelCache()).
	CacheDir string
	// Endpoint is the hub's address (default $HF_ENDPOINT, else https://huggingface.co).
	Endpoint string
	// Revision is the branch, tag or commit (default "main").
	Revision string
	// Token is sent as a bearer token, for gated or private models (default $HF_TOKEN).
	Token string
	// Client makes the requests (default http.DefaultClient).
	Client *http.Client
	// Progress receives the download progress (nil: silent); ProgressMode picks its form.
	Progress     io.Writer
	ProgressMode progress.Mode
}

// DefaultModelCache is $SENTIBENCH_CACHE/models, or <user cache dir>/sentibench/models.
func DefaultModelCache() (string, error) {
	if d := os.Getenv("SENTIBENCH_CACHE"); d != "" {
		return filepath.Join(d, "models"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("bert: no cache directory (set SENTIBENCH_CACHE): %w", err)
	}
	return filepath.Join(d, "sentibench", "models"), nil
}

var (
	hubID    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)
	revision = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// resolvedFile is written last into a downloaded model directory: its presence means every file
// the model needs is there, so later calls need no network.
const resolvedFile = "sentibench-resolved.json"

// hubFile is one file a model may need; of each group, the first file the hub has is taken, and
// a required group must have one.
var hubFiles = []struct {
	names    []string
	required bool
}{
	{[]string{"config.json"}, true},
	{[]string{"model.safetensors", "pytorch_model.bin"}, true},
	{[]string{"tokenizer.json"}, false},
	{[]string{"vocab.txt"}, false},
	{[]string{"tokenizer_config.json"}, false},
}

// Resolve returns a local model directory for name: name itself when it is a directory,
// otherwise a Hugging Face hub id (such as "sentence-transformers/all-MiniLM-L6-v2") whose
// files are downloaded from {endpoint}/{id}/resolve/{revision}/{file} into the cache, with
// progress, resumable, and verified against the hub's SHA-256 for large (LFS) files. A model
// downloaded once is used from the cache without any network access.
func Resolve(ctx context.Context, name string, opt ResolveOptions) (string, error) {
	if st, err := os.Stat(name); err == nil {
		if !st.IsDir() {
			return "", fmt.Errorf("bert: %s is a file, not a model directory", name)
		}
		return name, nil
	}
	if !hubID.MatchString(name) || strings.Contains(name, "..") {
		return "", fmt.Errorf("bert: %q is neither a model directory nor a hub id (owner/name)", name)
	}
	rev := opt.Revision
	if rev == "" {
		rev = "main"
	}
	if !revision.MatchString(rev) || strings.Contains(rev, "..") {
		return "", fmt.Errorf("bert: bad revision %q", rev)
	}
	root := opt.CacheDir
	if root == "" {
		var err error
		if root, err = DefaultModelCache(); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(root, filepath.FromSlash(name), rev)
	if _, err := os.Stat(filepath.Join(dir, resolvedFile)); err == nil {
		return dir, nil
	}
	endpoint := opt.Endpoint
	if endpoint == "" {
		endpoint = os.Getenv("HF_ENDPOINT")
	}
	if endpoint == "" {
		endpoint = "https://huggingface.co"
	}
	endpoint = strings.TrimRight(endpoint, "/")
	token := opt.Token
	if token == "" {
		token = os.Getenv("HF_TOKEN")
	}
	client := opt.Client
	if client == nil {
		client = http.DefaultClient
	}
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	h := &hub{ctx: ctx, client: client, header: header, base: endpoint + "/" + name + "/resolve/" + rev + "/"}
	var got []string
	for _, g := range hubFiles {
		var found *remoteFile
		for _, f := range g.names {
			rf, err := h.head(f)
			if err != nil {
				return "", fmt.Errorf("bert: model %s: %w", name, err)
			}
			if rf != nil {
				found = rf
				break
			}
		}
		if found == nil {
			if g.required {
				return "", fmt.Errorf("bert: model %s has none of %s at %s", name, strings.Join(g.names, ", "), endpoint)
			}
			continue
		}
		if _, err := fetch.File(ctx, fetch.Request{URL: found.url, Dest: filepath.Join(dir, found.name), SHA256: found.sha256,
			Size: found.size, Header: header, Client: client, Retries: 2, Progress: opt.Progress,
			ProgressMode: opt.ProgressMode, Label: "download " + name + "/" + found.name}); err != nil {
			return "", fmt.Errorf("bert: %w", err)
		}
		got = append(got, found.name)
	}
	if !contains(got, "tokenizer.json") && !contains(got, "vocab.txt") {
		return "", fmt.Errorf("bert: model %s has neither tokenizer.json nor vocab.txt at %s", name, endpoint)
	}
	b, _ := json.MarshalIndent(map[string]any{"id": name, "revision": rev, "endpoint": endpoint, "files": got}, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, resolvedFile), append(b, '\n')); err != nil {
		return "", fmt.Errorf("bert: %w", err)
	}
	return dir, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

type hub struct {
	ctx    context.Context
	client *http.Client
	header http.Header
	base   string
}

type remoteFile struct {
	name, url, sha256 string
	size              int64
}

// head asks the hub about a file without following its redirect, where the hub tells a large
// (LFS) file's SHA-256 and size (X-Linked-Etag, X-Linked-Size). It returns nil when the file
// does not exist.
func (h *hub) head(name string) (*remoteFile, error) {
	url := h.base + name
	req, err := http.NewRequestWithContext(h.ctx, http.MethodHead, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h.header {
		req.Header[k] = v
	}
	noRedirect := *h.client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking %s: %w (offline? a model downloaded once is used from the cache)", url, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%s: %s (a gated or private model needs HF_TOKEN)", url, resp.Status)
	case resp.StatusCode >= 400:
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	rf := &remoteFile{name: name, url: url, size: -1}
	etag := strings.Trim(strings.TrimPrefix(resp.Header.Get("X-Linked-Etag"), "W/"), `"`)
	if b, err := hex.DecodeString(etag); err == nil && len(b) == 32 {
		rf.sha256 = strings.ToLower(etag)
	}
	if s := resp.Header.Get("X-Linked-Size"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			rf.size = n
		}
	} else if resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 {
		rf.size = resp.ContentLength
	}
	if rf.size <= 0 {
		rf.size = 0 // unknown (or empty): fetch checks nothing
	}
	return rf, nil
}
