package features

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
)

// tokenCounter is a forward pass that counts the word pieces it computes.
type tokenCounter struct {
	fwd    Forwarder
	tokens int64
}

func (c *tokenCounter) ForwardInto(seqs [][]int32, out [][]float32) error {
	for _, s := range seqs {
		c.tokens += int64(len(s))
	}
	return c.fwd.ForwardInto(seqs, out)
}

// sameFiles fails the test unless directories a and b hold the same files, byte for byte.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	names := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	na, nb := names(a), names(b)
	if !slices.Equal(na, nb) {
		t.Fatalf("%s holds %v, %s holds %v", a, na, b, nb)
	}
	for _, name := range na {
		x, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs: %d bytes unsharded, %d merged", name, len(x), len(y))
		}
	}
}

// shardOptions: several batches and chunks in each of three shards of 40 reviews.
func shardOptions(m *bert.Model, root string) Options {
	return Options{Model: m, CacheDir: root, BatchSize: 8, BatchTokens: 2000, ChunkTokens: 1500}
}

// TestShardsMergeToUnshardedBytes builds a cache whole, and again as 2 and 3 shards built at
// the same time (goroutines, each with its own encoder), one of them interrupted and resumed
// first; the merged caches are the whole one, byte for byte, every file. Each shard computes
// only its part, and the parts are balanced by word pieces.
func TestShardsMergeToUnshardedBytes(t *testing.T) {
	texts := reviews(t, 40)
	whole, err := Build(context.Background(), texts, shardOptions(tinyBERT(t), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := readMeta(whole)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reviews, %d word pieces, %d chunks", meta.Reviews, meta.WordPieces, meta.Chunks)
	for _, n := range []int{2, 3} {
		root := t.TempDir()
		// Shard 0 is interrupted after its first chunk: the shards then resume it.
		ctx, cancel := context.WithCancel(context.Background())
		opt := shardOptions(tinyBERT(t), root)
		opt.afterChunk = func(int) { cancel() }
		if _, err := BuildShard(ctx, texts, opt, Shard{0, n}); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted shard 0/%d: %v", n, err)
		}
		counters := make([]*tokenCounter, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for k := range n {
			opt := shardOptions(tinyBERT(t), root)
			opt.OnDevice = func(m2 *bert.Model) (Forwarder, error) {
				counters[k] = &tokenCounter{fwd: m2}
				return counters[k], nil
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[k] = BuildShard(context.Background(), texts, opt, Shard{k, n})
			}()
		}
		wg.Wait()
		var sum int64
		for k, err := range errs {
			if err != nil {
				t.Fatalf("shard %d/%d: %v", k, n, err)
			}
			got := counters[k].tokens
			sum += got
			if k > 0 && (got < meta.WordPieces/int64(2*n) || got > 2*meta.WordPieces/int64(n)) {
				t.Errorf("shard %d/%d computed %d of %d word pieces: not balanced", k, n, got, meta.WordPieces)
			}
		}
		if sum >= meta.WordPieces || sum < meta.WordPieces/2 { // shard 0's first chunk was computed before
			t.Errorf("%d shards computed %d word pieces after the interruption, of %d", n, sum, meta.WordPieces)
		}
		var log bytes.Buffer
		opt = shardOptions(tinyBERT(t), root)
		opt.Progress = &log
		merged, err := Merge(context.Background(), texts, opt)
		if err != nil {
			t.Fatalf("merging %d shards: %v", n, err)
		}
		if filepath.Base(merged) != filepath.Base(whole) {
			t.Errorf("merged into %s, the whole build is %s", merged, whole)
		}
		sameFiles(t, whole, merged)
		if left, _ := filepath.Glob(filepath.Join(root, "*.shard-*")); len(left) > 0 || !strings.Contains(log.String(), "merged") {
			t.Errorf("after the merge: shards %v left; log %q", left, log.String())
		}
		// Merging again, or building a shard after the merge, finds the complete cache.
		if again, err := Merge(context.Background(), texts, opt); err != nil || again != merged {
			t.Errorf("a second merge: %s, %v", again, err)
		}
		opt.afterChunk = func(int) { t.Error("a shard of a complete cache was built") }
		if dir, err := BuildShard(context.Background(), texts, opt, Shard{1, n}); err != nil || dir != merged {
			t.Errorf("a shard after the merge: %s, %v", dir, err)
		}
	}
}

// TestParseShard: K/N with 0 <= K < N; anything else names the problem.
func TestParseShard(t *testing.T) {
	if s, err := ParseShard("1/3"); err != nil || s != (Shard{1, 3}) {
		t.Errorf("1/3: %v, %v", s, err)
	}
	for in, want := range map[string]string{
		"2/2":  "K must be in 0..1",
		"5/2":  "K must be in 0..1",
		"-1/2": "K must be in 0..1",
		"0/0":  "N must be at least 1",
		"1":    "not K/N",
		"a/2":  `K "a" is not a number`,
		"0/b":  `N "b" is not a number`,
	} {
		if _, err := ParseShard(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

// TestMergeBadShards: every way the shards of a merge can be wrong is refused with an error
// naming the shard and the problem, before anything of the cache is written; then the right
// shards merge.
func TestMergeBadShards(t *testing.T) {
	texts := reviews(t, 40)
	root := t.TempDir()
	m := tinyBERT(t)
	opt := shardOptions(m, root)
	ctx := context.Background()
	merge := func(want string) {
		t.Helper()
		dir, err := Merge(ctx, texts, opt)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("merge: %s, %v; want an error with %q", dir, err, want)
		}
		t.Logf("refused: %v", err)
		if _, err := os.Stat(filepath.Join(dir, MetaFile)); err == nil {
			t.Fatalf("a refused merge wrote %s", filepath.Join(dir, MetaFile))
		}
	}
	merge("no shard of the cache")
	if _, err := BuildShard(ctx, texts, opt, Shard{2, 2}); err == nil || !strings.Contains(err.Error(), "K must be in 0..1") {
		t.Errorf("shard 2/2: %v", err)
	}
	if _, err := BuildShard(ctx, texts, opt, Shard{0, 1000}); err == nil || !strings.Contains(err.Error(), "fewer than 1000 shards") {
		t.Errorf("more shards than batches: %v", err)
	}
	// Shard 1/2 of another encoder setting (hidden states 1 and 2) beside shard 0/2 of ours.
	if _, err := BuildShard(ctx, texts, opt, Shard{0, 2}); err != nil {
		t.Fatal(err)
	}
	other := shardOptions(tinyBERT(t), root)
	other.Model.Layers = []int{1, 2}
	if _, err := BuildShard(ctx, texts, other, Shard{1, 2}); err != nil {
		t.Fatal(err)
	}
	merge("shard 1/2 of the cache")
	// A shard given as the cache.
	asCache := shardOptions(tinyBERT(t), mustDir(t, root, "*.shard-0-of-2"))
	if _, err := Build(ctx, texts, asCache); err == nil || !strings.Contains(err.Error(), ".shard-0-of-2 is a shard of a feature cache, not a cache: merge the shards first") {
		t.Errorf("a shard given as the cache: %v", err)
	}
	merge("is shard 1/2 of a cache built with other settings: encoder layers: the cache has the mean of hidden states 1,2, asked the last hidden state")
	// Shard 1/2 of other batch sizes.
	sized := shardOptions(tinyBERT(t), root)
	sized.BatchSize = 4
	if _, err := BuildShard(ctx, texts, sized, Shard{1, 2}); err != nil {
		t.Fatal(err)
	}
	merge("shard 1/2 was planned with batches of 4 reviews")
	// Shard 1/2 interrupted.
	dir1 := strings.TrimSuffix(mustDir(t, root, "*.shard-0-of-2"), "0-of-2") + "1-of-2"
	if err := os.RemoveAll(dir1); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	stop := shardOptions(tinyBERT(t), root)
	stop.afterChunk = func(int) { cancel() }
	if _, err := BuildShard(cctx, texts, stop, Shard{1, 2}); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	merge("shard 1/2 (" + dir1 + ") is incomplete (1 of")
	// A shard of another count beside them.
	if _, err := BuildShard(ctx, texts, opt, Shard{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildShard(ctx, texts, opt, Shard{2, 3}); err != nil {
		t.Fatal(err)
	}
	merge("were cut in different counts (1 of 3, 2 of 2)")
	if err := os.RemoveAll(strings.Replace(dir1, "1-of-2", "2-of-3", 1)); err != nil {
		t.Fatal(err)
	}
	// A damaged shard data file.
	data := filepath.Join(dir1, DataFile)
	if err := os.Truncate(data, 10); err != nil {
		t.Fatal(err)
	}
	merge(data + " is 10 bytes")
	// Rebuilt with another worker count: merged, with a warning that the rounding may differ.
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	one, err := bert.Load(m.Dir, &nn.CPU{BLAS: impl, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildShard(ctx, texts, shardOptions(one, root), Shard{1, 2}); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	opt.Progress = &log
	if _, err := Merge(ctx, texts, opt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "warning: the shards ran the encoder with 2, 1 workers") {
		t.Errorf("no warning of the shards' worker counts:\n%s", log.String())
	}
}

// mustDir is the one path that matches pattern under root.
func mustDir(t *testing.T, root, pattern string) string {
	t.Helper()
	got, err := filepath.Glob(filepath.Join(root, pattern))
	if err != nil || len(got) != 1 {
		t.Fatalf("%s: %v, %v", pattern, got, err)
	}
	return got[0]
}

// TestCacheDirGiven: a cache directory given as the cache root (the path Build returns) is
// used as it is when it is the cache asked for, and refused, naming each difference, when it
// was built with other encoder layers, truncation or texts; nothing is built inside it.
func TestCacheDirGiven(t *testing.T) {
	texts := reviews(t, 12)
	ctx := context.Background()
	dir, err := Build(ctx, texts, testOptions(tinyBERT(t), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	opt := testOptions(tinyBERT(t), dir)
	opt.afterChunk = func(int) { t.Error("the given cache was rebuilt") }
	if got, err := Build(ctx, texts, opt); err != nil || got != dir {
		t.Fatalf("the same settings: %s, %v", got, err)
	}
	for _, c := range []struct {
		name  string
		set   func(o *Options)
		texts []string
		want  []string
	}{
		{"layers", func(o *Options) { o.Model.Layers = []int{1, 2} }, texts,
			[]string{"encoder layers: the cache has the last hidden state, asked the mean of hidden states 1,2"}},
		{"truncation", func(o *Options) { o.Model.TruncateHead = 100 }, texts,
			[]string{"truncation: the cache has the first word pieces of a long review, asked head+tail truncation with a head of 100 word pieces"}},
		{"both", func(o *Options) { o.Model.TruncateHead, o.Model.Layers = 100, []int{-2} }, texts,
			[]string{"encoder layers: the cache has the last hidden state, asked the mean of hidden states 1", "; truncation: "}},
		{"texts", func(*Options) {}, texts[:10], []string{"texts: the cache holds 12 reviews", "asked 10 reviews"}},
	} {
		opt := testOptions(tinyBERT(t), dir)
		c.set(&opt)
		for _, f := range []func() (string, error){
			func() (string, error) { return Build(ctx, c.texts, opt) },
			func() (string, error) { return BuildShard(ctx, c.texts, opt, Shard{0, 2}) },
			func() (string, error) { return Merge(ctx, c.texts, opt) },
		} {
			_, err := f()
			if err == nil || !strings.Contains(err.Error(), "the feature cache "+dir+" was built with other settings than asked") {
				t.Fatalf("%s: %v", c.name, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %v\nwant %q", c.name, err, w)
				}
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("a directory %s was made inside the cache", e.Name())
		}
	}
	if left, _ := filepath.Glob(dir + ".shard-*"); len(left) > 0 {
		t.Errorf("shards made beside it: %v", left)
	}
}
