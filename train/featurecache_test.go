package train

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFeatureCacheGiven (issue 21): --feature-cache naming one cache directory (the path
// `sentibench embed` prints) is used when it is the cache of the run's settings, and refused
// when it was built with other encoder layers or truncation, naming the difference, before
// the run directory is made; no cache is built inside it.
func TestFeatureCacheGiven(t *testing.T) {
	cfg, _ := tinyBiGRUConfig(t)
	cfg.Limit, cfg.Epochs = 30, 1
	cfg.RunDir = filepath.Join(t.TempDir(), "first")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	caches, err := filepath.Glob(filepath.Join(os.Getenv("SENTIBENCH_CACHE"), "features", "bert-*"))
	if err != nil || len(caches) != 1 {
		t.Fatalf("feature caches %v, %v", caches, err)
	}
	cfg.FeatureCache = caches[0]
	cfg.RunDir = filepath.Join(t.TempDir(), "same")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatalf("the run's own cache given: %v", err)
	}
	for _, c := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"layers", func(c *Config) { c.EncoderLayers = []int{1, 2} },
			"encoder layers: the cache has the last hidden state, asked the mean of hidden states 1,2"},
		{"truncation", func(c *Config) { c.TruncateHead = 100 },
			"truncation: the cache has the first word pieces of a long review, asked head+tail truncation with a head of 100 word pieces"},
	} {
		other := cfg
		c.set(&other)
		other.RunDir = filepath.Join(t.TempDir(), c.name)
		_, err := Run(context.Background(), other, quietHooks())
		if err == nil || !strings.Contains(err.Error(), "the feature cache "+caches[0]+" was built with other settings than asked: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant an error naming %q", c.name, err, c.want)
		}
		if _, err := os.Stat(other.RunDir); err == nil {
			t.Errorf("%s: the refused run left %s", c.name, other.RunDir)
		}
	}
	entries, _ := os.ReadDir(caches[0])
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("a cache %s was built inside the given one", e.Name())
		}
	}
}
