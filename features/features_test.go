package features

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
)

// reviews reads the first n reviews of the real IMDB archive (test/neg comes first).
func reviews(t *testing.T, n int) []string { return testutil.IMDBReviews(t, n) }

// tinyBERT loads the shared tiny random BERT (hidden 32) on a one-thread BLAS with 2 workers.
func tinyBERT(t testing.TB) *bert.Model {
	t.Helper()
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	impl.SetThreads(1)
	m, err := bert.Load(testutil.Shared(t, "models/bert-uncased-random-L2-H32"), &nn.CPU{BLAS: impl, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// small sizes: several batches per chunk and several chunks for a few dozen reviews.
func testOptions(m *bert.Model, root string) Options {
	return Options{Model: m, CacheDir: root, BatchSize: 16, BatchTokens: 3000, ChunkTokens: 4000}
}

func TestBuildAndRead(t *testing.T) {
	texts := reviews(t, 40)
	texts = append(texts, "Short.", "<br /><br />Olé! Naïve café, 10/10.")
	m := tinyBERT(t)
	root := t.TempDir()
	var log bytes.Buffer
	opt := testOptions(m, root)
	opt.Progress = &log
	dir, err := Build(context.Background(), texts, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "word pieces x 32 float16") || !strings.Contains(log.String(), "estimated") {
		t.Errorf("no size and time estimates in the progress output:\n%s", log.String())
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	meta := r.Meta()
	if r.Len() != len(texts) || r.Dim() != 32 || meta.Chunks < 3 {
		t.Fatalf("%d reviews, dim %d, %d chunks", r.Len(), r.Dim(), meta.Chunks)
	}
	// Every review against a direct encoder run, alone (the cache ran it in another batch).
	var worst float64
	for i, text := range texts {
		ids := m.Encode(text)
		if r.Length(i) != len(ids) || ids[0] != 101 || ids[len(ids)-1] != 102 {
			t.Fatalf("review %d: length %d, want %d ([CLS] and [SEP] included)", i, r.Length(i), len(ids))
		}
		want, err := m.Forward([][]int32{ids})
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Review(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := range got {
			d := math.Abs(float64(got[j] - want[0][j]))
			if d > 1e-6+math.Abs(float64(want[0][j]))/1024 { // float16: 11 significant bits
				t.Fatalf("review %d value %d: %v, encoder %v", i, j, got[j], want[0][j])
			}
			worst = max(worst, d)
		}
	}
	t.Logf("%d reviews, %d word pieces, %d chunks; max |cache - encoder| %.2g", r.Len(), meta.WordPieces, meta.Chunks, worst)

	// A batch: time-major, zero padding, lengths descending.
	idx := []int{0, 1, 2, 3, 40, 41}
	slices.SortStableFunc(idx, func(a, b int) int { return r.Length(b) - r.Length(a) })
	in, err := r.Batch(idx)
	if err != nil {
		t.Fatal(err)
	}
	B, D := len(idx), r.Dim()
	if in.T != r.Length(idx[0]) || in.Dim != D || len(in.Feats) != in.T*B*D || in.B() != B {
		t.Fatalf("batch T %d dim %d, %d values", in.T, in.Dim, len(in.Feats))
	}
	for b, i := range idx {
		if in.Lengths[b] != r.Length(i) {
			t.Errorf("batch length %d = %d, want %d", b, in.Lengths[b], r.Length(i))
		}
		rev, _ := r.Review(i, nil)
		for tt := 0; tt < in.T; tt++ {
			row := in.Feats[(tt*B+b)*D : (tt*B+b+1)*D]
			if tt < r.Length(i) {
				if !slices.Equal(row, rev[tt*D:(tt+1)*D]) {
					t.Fatalf("batch row b=%d t=%d differs from the review", b, tt)
				}
			} else if slices.ContainsFunc(row, func(v float32) bool { return v != 0 }) {
				t.Fatalf("padding at b=%d t=%d is not zero", b, tt)
			}
		}
	}
	// Reusing the input's buffers gives the same.
	in2 := &nn.Input{Feats: make([]float32, 3), Lengths: []int{9, 9, 9}}
	if err := r.BatchInto(idx, in2); err != nil || !slices.Equal(in2.Feats, in.Feats) || !slices.Equal(in2.Lengths, in.Lengths) {
		t.Errorf("BatchInto differs from Batch (%v)", err)
	}
	if _, err := r.Batch([]int{idx[len(idx)-1], idx[0]}); err == nil || !strings.Contains(err.Error(), "not sorted") {
		t.Errorf("unsorted batch: %v", err)
	}
	if _, err := r.Batch([]int{len(texts)}); err == nil {
		t.Error("out-of-range review did not fail")
	}

	r2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
	if _, err := r2.Batch(idx); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("batch from a closed reader: %v", err)
	}

	// A second Build finds the complete cache and computes nothing.
	opt.afterChunk = func(int) { t.Error("a complete cache was rebuilt") }
	log.Reset()
	if dir2, err := Build(context.Background(), texts, opt); err != nil || dir2 != dir {
		t.Fatalf("second build: %s, %v", dir2, err)
	}
	if !strings.Contains(log.String(), "reused") {
		t.Errorf("second build did not say it reused the cache: %s", log.String())
	}
}

func TestResumeGivesSameBytes(t *testing.T) {
	texts := reviews(t, 36)
	m := tinyBERT(t)
	testOptions := func(m *bert.Model, root string) Options {
		return Options{Model: m, CacheDir: root, BatchSize: 16, BatchTokens: 1500, ChunkTokens: 2000}
	}
	full, err := Build(context.Background(), texts, testOptions(m, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(full, DataFile))
	if err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	opt := testOptions(m, root)
	opt.afterChunk = func(done int) {
		if done == 2 {
			cancel() // the build stops at the next batch: as if killed after chunk 2
		}
	}
	dir, err := Build(ctx, texts, opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled build: %s, %v", dir, err)
	}
	dir = filepath.Join(root, filepath.Base(full))
	meta, err := readMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := readProgress(dir, meta.Key, meta.Chunks); err != nil || done != 2 {
		t.Fatalf("progress after the interruption: %d chunks, %v", done, err)
	}
	if _, err := readProgress(dir, strings.Repeat("0", 64), meta.Chunks); err == nil {
		t.Error("progress of another key was read")
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "incomplete (2 of") {
		t.Fatalf("opening an interrupted cache: %v", err)
	}
	var chunks []int
	opt = testOptions(m, root)
	opt.BatchTokens = 999 // ignored on resume: the stored plan wins
	opt.afterChunk = func(done int) { chunks = append(chunks, done) }
	if _, err := Build(context.Background(), texts, opt); err != nil {
		t.Fatal(err)
	}
	if len(chunks) == 0 || chunks[0] != 3 {
		t.Errorf("resumed build committed chunks %v, want 3 onwards", chunks)
	}
	got, err := os.ReadFile(filepath.Join(dir, DataFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the resumed cache differs from an uninterrupted build")
	}
	for _, f := range []string{IndexFile} {
		a, _ := os.ReadFile(filepath.Join(full, f))
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs", f)
		}
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestKeyMismatchRebuilds(t *testing.T) {
	texts := reviews(t, 12)
	m := tinyBERT(t)
	root := t.TempDir()
	opt := testOptions(m, root)
	dirA, err := Build(context.Background(), texts, opt)
	if err != nil {
		t.Fatal(err)
	}
	// Other texts: another key, another directory, a new build.
	other := slices.Clone(texts)
	other[5] += " And one more sentence."
	built := 0
	opt.afterChunk = func(int) { built++ }
	dirB, err := Build(context.Background(), other, opt)
	if err != nil {
		t.Fatal(err)
	}
	if dirB == dirA || built == 0 {
		t.Fatalf("changed texts reused the cache (%s, %d chunks built)", dirB, built)
	}
	rb, err := Open(dirB)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Length(5) <= len(m.Encode(texts[5])) || rb.Meta().DataHash != DataHash(other) {
		t.Errorf("cache B does not hold the changed text")
	}
	rb.Close()
	// A directory whose files hold another key (as after a hash collision, or a copied
	// directory) is rebuilt, never read.
	metaA, err := readMeta(dirA)
	if err != nil {
		t.Fatal(err)
	}
	metaB, _ := readMeta(dirB)
	if err := writeJSON(filepath.Join(dirA, MetaFile), metaB); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	opt.Progress = &log
	built = 0
	if _, err := Build(context.Background(), texts, opt); err != nil {
		t.Fatal(err)
	}
	if built == 0 || !strings.Contains(log.String(), "holds another key") {
		t.Errorf("a directory with another key was not rebuilt (%d chunks):\n%s", built, log.String())
	}
	if m2, _ := readMeta(dirA); m2.Key != metaA.Key {
		t.Errorf("rebuilt cache has key %.16s, want %.16s", m2.Key, metaA.Key)
	}
	// A second process cannot build the same cache at the same time.
	unlock, err := lockDir(dirA)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file: a second open in this process conflicts like another process.
	if _, err := Build(context.Background(), texts, opt); err == nil || !strings.Contains(err.Error(), "another process is building") {
		t.Errorf("concurrent build: %v", err)
	}
	unlock()
	if Key(m, DataHash(texts)) != metaA.Key {
		t.Error("Key() differs from the stored key")
	}
}

func TestDamagedCache(t *testing.T) {
	texts := reviews(t, 10)
	m := tinyBERT(t)
	root := t.TempDir()
	dir, err := Build(context.Background(), texts, testOptions(m, root))
	if err != nil {
		t.Fatal(err)
	}
	save := map[string][]byte{}
	for _, f := range []string{MetaFile, IndexFile, DataFile, ProgressFile} {
		save[f], _ = os.ReadFile(filepath.Join(dir, f))
	}
	restore := func() {
		for f, b := range save {
			os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
	}
	cases := []struct {
		name string
		file string
		edit func([]byte) []byte
		want string
	}{
		{"truncated data", DataFile, func(b []byte) []byte { return b[:len(b)-10] }, DataFile + " is "},
		{"damaged meta", MetaFile, func(b []byte) []byte { return b[:len(b)/2] }, MetaFile + " is damaged"},
		{"other format", MetaFile, func(b []byte) []byte { return bytes.Replace(b, []byte(Format), []byte("v0"), 1) }, `format "v0"`},
		{"truncated index", IndexFile, func(b []byte) []byte { return b[:len(b)-3] }, IndexFile + ": "},
		{"index offsets", IndexFile, func(b []byte) []byte {
			b = slices.Clone(b)
			for i := indexHeader; i < indexHeader+8; i++ {
				b[i] = 0xff
			}
			return b
		}, "lie outside"},
		{"index key", IndexFile, func(b []byte) []byte {
			b = slices.Clone(b)
			b[len(indexMagic)] ^= 1
			return b
		}, "does not match"},
		{"incomplete", ProgressFile, func(b []byte) []byte {
			return regexp.MustCompile(`"chunks_done": \d+`).ReplaceAll(b, []byte(`"chunks_done": 0`))
		}, "incomplete (0 of"},
		{"damaged progress", ProgressFile, func(b []byte) []byte {
			return regexp.MustCompile(`"chunks_done": \d+`).ReplaceAll(b, []byte(`"chunks_done": 99`))
		}, "99 of"},
		{"missing data", DataFile, func([]byte) []byte { return nil }, "no such file"},
	}
	for _, c := range cases {
		b := c.edit(save[c.file])
		if b == nil {
			os.Remove(filepath.Join(dir, c.file))
		} else {
			os.WriteFile(filepath.Join(dir, c.file), b, 0o644)
		}
		r, err := Open(dir)
		if err == nil {
			r.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", c.name, err, c.want)
		}
		// Build repairs it: the result has the original bytes.
		if _, err := Build(context.Background(), texts, testOptions(m, root)); err != nil {
			t.Errorf("%s: rebuild: %v", c.name, err)
		} else if got, _ := os.ReadFile(filepath.Join(dir, DataFile)); !bytes.Equal(got, save[DataFile]) {
			t.Errorf("%s: the repaired cache differs", c.name)
		} else if r, err := Open(dir); err != nil {
			t.Errorf("%s: after the rebuild: %v", c.name, err)
		} else {
			r.Close()
		}
		restore()
	}
}

func TestPlan(t *testing.T) {
	lengths := []int32{5, 9, 9, 1, 7, 3, 9, 2}
	p := makePlan(lengths, 3, 20, 15)
	if !slices.Equal(p.order, []int{1, 2, 6, 4, 0, 5, 7, 3}) {
		t.Errorf("order %v (longest first, stable)", p.order)
	}
	// batches: at most 3 reviews and 20 word pieces: [9 9] [9 7] [5 3 2] [1]
	want := []batch{{0, 2}, {2, 4}, {4, 7}, {7, 8}}
	if !slices.Equal(p.batches, want) {
		t.Errorf("batches %v, want %v", p.batches, want)
	}
	// chunks of at least 15 word pieces: batches [0] (18), [1] (16), [2 3] (11)
	if !slices.Equal(p.chunks, []int{0, 1, 2, 4}) {
		t.Errorf("chunks %v", p.chunks)
	}
	if p.total != 45 || p.offsets[1] != 0 || p.offsets[2] != 9 || p.offsets[3] != 44 {
		t.Errorf("total %d offsets %v", p.total, p.offsets)
	}
	// A review longer than the token budget gets a batch of its own.
	if q := makePlan([]int32{50, 2}, 8, 20, 1); !slices.Equal(q.batches, []batch{{0, 1}, {1, 2}}) {
		t.Errorf("long review: batches %v", q.batches)
	}
}

// TestBuildFromHubID names the encoder by a hub id: it is downloaded (from a local server
// imitating the hub's resolve URLs) into $SENTIBENCH_CACHE/models, and the cache goes to
// $SENTIBENCH_CACHE/features.
func TestBuildFromHubID(t *testing.T) {
	src := "../nn/bert/testdata/mini-bert"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/org/mini-bert/resolve/main/")
		if !ok || strings.Contains(name, "/") || strings.HasPrefix(name, "pytorch_model") {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(src, name))
	}))
	defer srv.Close()
	cache := t.TempDir()
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("SENTIBENCH_CACHE", cache)
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"A dull, boring mess of a film.", "This movie was absolutely wonderful, I loved it.", "Fine."}
	dir, err := Build(context.Background(), texts, Options{Encoder: "org/mini-bert", CPU: &nn.CPU{BLAS: impl, Workers: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != filepath.Join(cache, "features") {
		t.Errorf("cache at %s, want under %s", dir, filepath.Join(cache, "features"))
	}
	if _, err := os.Stat(filepath.Join(cache, "models", "org", "mini-bert", "main", "model.safetensors")); err != nil {
		t.Errorf("model not in the cache: %v", err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != 3 || r.Dim() != 16 {
		t.Errorf("%d reviews of dim %d", r.Len(), r.Dim())
	}
}

// TestHeadTailCache builds the cache of real reviews with head+tail truncation: it has its own
// key, a long review's features are the encoder's output for its head and tail, and a review
// that fits is stored as in the plain cache.
func TestHeadTailCache(t *testing.T) {
	texts := reviews(t, 80)
	m := tinyBERT(t)
	root := t.TempDir()
	plainDir, err := Build(context.Background(), texts, testOptions(m, root))
	if err != nil {
		t.Fatal(err)
	}
	m.TruncateHead = 128
	dir, err := Build(context.Background(), texts, testOptions(m, root))
	if err != nil {
		t.Fatal(err)
	}
	if dir == plainDir {
		t.Fatalf("head+tail and plain truncation share the cache %s", dir)
	}
	plain, err := Open(plainDir)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ht, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ht.Close()
	if ht.Meta().TruncateHead != 128 || plain.Meta().TruncateHead != 0 {
		t.Errorf("meta truncate_head: %d and %d", ht.Meta().TruncateHead, plain.Meta().TruncateHead)
	}
	long := 0
	for i, text := range texts {
		a, _ := plain.Review(i, nil)
		b, _ := ht.Review(i, nil)
		if len(m.Tokenizer.Tokenize(text)) <= m.MaxLen()-2 {
			if !slices.Equal(a, b) {
				t.Errorf("review %d fits, but its features differ between the caches", i)
			}
			continue
		}
		long++
		ids := m.Encode(text)
		if len(ids) != m.MaxLen() || ht.Length(i) != len(ids) {
			t.Fatalf("review %d: %d ids, cached length %d", i, len(ids), ht.Length(i))
		}
		want, err := m.Forward([][]int32{ids})
		if err != nil {
			t.Fatal(err)
		}
		for j := range b {
			if d := math.Abs(float64(b[j] - want[0][j])); d > 1e-6+math.Abs(float64(want[0][j]))/1024 {
				t.Fatalf("review %d value %d: %v, encoder on head+tail %v", i, j, b[j], want[0][j])
			}
		}
		if slices.Equal(a, b) {
			t.Errorf("long review %d: head+tail features equal the plain ones", i)
		}
	}
	if long == 0 {
		t.Fatal("no review longer than the encoder's maximum among the first reviews")
	}
	t.Logf("%d of %d reviews cut head+tail", long, len(texts))

	m.TruncateHead = m.MaxLen() - 2
	if _, err := Build(context.Background(), texts, testOptions(m, root)); err == nil || !strings.Contains(err.Error(), "head+tail") {
		t.Errorf("head %d of a %d model: %v", m.TruncateHead, m.MaxLen(), err)
	}
}

// TestLayersCache: a cache of averaged hidden states (bert.Model.Layers) has its own key, names
// them in its meta, holds what the encoder gives with them, and the last layer alone keys as the
// plain cache.
func TestLayersCache(t *testing.T) {
	texts := reviews(t, 20)
	m := tinyBERT(t)
	root := t.TempDir()
	plainDir, err := Build(context.Background(), texts, testOptions(m, root))
	if err != nil {
		t.Fatal(err)
	}
	m.Layers = []int{-1}
	if dir, err := Build(context.Background(), texts, testOptions(m, root)); err != nil || dir != plainDir {
		t.Errorf("the last layer alone: cache %s (%v), want the plain %s", dir, err, plainDir)
	}
	m.Layers = []int{1, 2}
	dir, err := Build(context.Background(), texts, testOptions(m, root))
	if err != nil {
		t.Fatal(err)
	}
	if dir == plainDir {
		t.Fatalf("averaged and last hidden states share the cache %s", dir)
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Meta().Layers != "1,2" {
		t.Errorf("meta layers %q, want 1,2", c.Meta().Layers)
	}
	for i, text := range texts {
		want, err := m.Forward([][]int32{m.Encode(text)})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := c.Review(i, nil)
		if len(got) != len(want[0]) {
			t.Fatalf("review %d: %d values cached, %d computed", i, len(got), len(want[0]))
		}
		for j := range got {
			if d := math.Abs(float64(got[j] - want[0][j])); d > 1e-6+math.Abs(float64(want[0][j]))/1024 {
				t.Fatalf("review %d value %d: %v, encoder %v", i, j, got[j], want[0][j])
			}
		}
	}
	m.Layers = []int{1, 1}
	if _, err := Build(context.Background(), texts, testOptions(m, root)); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("hidden state picked twice: %v", err)
	}
}

// countingForwarder is a device stand-in: the model's own forward pass, counted.
type countingForwarder struct {
	m     *bert.Model
	calls int
}

func (c *countingForwarder) ForwardInto(seqs [][]int32, out [][]float32) error {
	c.calls++
	return c.m.ForwardInto(seqs, out)
}

// TestOnDevice checks that Build computes with the forward pass OnDevice gives, asks for it only
// when there is work, and reports its failure.
func TestOnDevice(t *testing.T) {
	texts := reviews(t, 12)
	m := tinyBERT(t)
	plainDir, err := Build(context.Background(), texts, testOptions(m, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	opt := testOptions(m, root)
	var fwd *countingForwarder
	asked := 0
	opt.OnDevice = func(got *bert.Model) (Forwarder, error) {
		asked++
		if got != m {
			t.Errorf("OnDevice got another model")
		}
		fwd = &countingForwarder{m: got}
		return fwd, nil
	}
	dir, err := Build(context.Background(), texts, opt)
	if err != nil {
		t.Fatal(err)
	}
	if asked != 1 || fwd.calls == 0 {
		t.Fatalf("OnDevice asked %d times, its forward pass ran %d times", asked, fwd.calls)
	}
	a, _ := os.ReadFile(filepath.Join(plainDir, DataFile))
	b, _ := os.ReadFile(filepath.Join(dir, DataFile))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("the device's cache (%d bytes) differs from the CPU's (%d bytes)", len(b), len(a))
	}
	if _, err := Build(context.Background(), texts, opt); err != nil || asked != 1 {
		t.Errorf("a complete cache asked for the device again (%d times; %v)", asked, err)
	}
	opt = testOptions(m, t.TempDir())
	opt.OnDevice = func(*bert.Model) (Forwarder, error) { return nil, errors.New("no such device") }
	if _, err := Build(context.Background(), texts, opt); err == nil || !strings.Contains(err.Error(), "no such device") {
		t.Errorf("a failing device: %v", err)
	}
}
