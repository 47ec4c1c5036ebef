package train

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/nn"
)

// TestCheckEncoder: a bigru run's encoder that is not where config.json says, or is no longer
// a usable model directory of the run's hidden size, is an error naming the path and the
// problem; the encoder in its place passes, and a word model's run needs none.
func TestCheckEncoder(t *testing.T) {
	fixture := testutil.Shared(t, "models/bert-uncased-random-L2-H32")
	t.Setenv("SENTIBENCH_CACHE", t.TempDir())
	hub := httptest.NewServer(http.NotFoundHandler()) // a hub that has no such model
	defer hub.Close()
	t.Setenv("HF_ENDPOINT", hub.URL)
	gone := filepath.Join(t.TempDir(), "all-MiniLM-L6-v2")
	file := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(file, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	info := func(encoder string, dim int) RunInfo {
		return RunInfo{Config: Config{Encoder: encoder}, Model: nn.Config{Kind: nn.KindBiGRU, InputDim: dim}}
	}
	for _, c := range []struct {
		name string
		info RunInfo
		want string // "" for no error
	}{
		{"in place", info(testutil.CopyDir(t, fixture), 32), ""},
		{"word model", RunInfo{Config: Config{Encoder: gone}, Model: nn.Config{Kind: nn.KindCNN}}, ""},
		{"moved", info(gone, 32), "the run's encoder " + gone + " does not exist: was it moved or deleted since the run was trained?"},
		{"relative", info("./models/minilm", 32), "the run's encoder ./models/minilm (a relative path, read from the current directory "},
		{"relative or hub id", info("models/minilm", 32), "the run's encoder models/minilm (a relative path, read from the current directory "},
		{"relative or hub id, the reason", info("models/minilm", 32), "is not a directory here, nor a hub model that could be fetched"},
		{"a file", info(file, 32), file + " is a file, not a model directory"},
		{"no config", info(testutil.CopyDir(t, fixture, "config.json"), 32), "is no model directory"},
		{"no weights", info(testutil.CopyDir(t, fixture, "model.safetensors"), 32), "has no weights (model.safetensors or pytorch_model.bin)"},
		{"another encoder", info(testutil.CopyDir(t, fixture), 64), "has hidden size 32, the run's model was trained on 64"},
	} {
		err := CheckEncoder(context.Background(), "runs/bigru", c.info)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "train: runs/bigru: ")):
			t.Errorf("%s: %v\nwant an error with %q", c.name, err, c.want)
		}
	}
}
