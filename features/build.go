package features

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sentibench/sentibench/internal/atomicfile"
	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
)

// Forwarder runs an encoder's forward pass: bert.Model on the CPU, gpu.Encoder on a GPU. Out[i]
// receives len(seqs[i]) rows of the encoder's features of sequence i.
type Forwarder interface {
	ForwardInto(seqs [][]int32, out [][]float32) error
}

// Options configure Build. Zero values take the defaults.
type Options struct {
	// Encoder is the encoder: a local model directory or a Hugging Face hub id (see
	// bert.Resolve). Ignored when Model is set.
	Encoder string
	// Model is an encoder already loaded (optional); its TruncateHead and Layers are used as
	// they are.
	Model *bert.Model
	// TruncateHead sets the loaded encoder's head+tail truncation (see
	// bert.Model.TruncateHead; 0: plain). Ignored when Model is set.
	TruncateHead int
	// Layers sets the loaded encoder's averaged hidden states (see bert.Model.Layers; nil:
	// the last). Ignored when Model is set.
	Layers []int
	// OnDevice, when set, gives the forward pass to run in place of the model's own on the CPU
	// (a copy of the model on a GPU, gpu.NewEncoder): it is called once, with the model (its
	// TruncateHead and Layers set), and only when there are features to compute. The caller
	// frees what it returns.
	OnDevice func(m *bert.Model) (Forwarder, error)
	// CPU runs the encoder when Build loads it (default: nn.CPU with the BLAS of
	// $SENTIBENCH_BLAS and GOMAXPROCS workers).
	CPU *nn.CPU
	// CacheDir is the root under which each cache gets its directory (default
	// DefaultCacheDir()).
	CacheDir string
	// BatchSize is the most reviews per encoder batch (default 128, the recipe's bigru batch).
	BatchSize int
	// BatchTokens is the most word pieces per encoder batch (default 8192), which bounds the
	// encoder's memory: a batch of BatchSize long reviews is cut smaller.
	BatchTokens int
	// ChunkTokens is how many word pieces are computed between two commits of the progress
	// (default 65536): the work an interruption can lose.
	ChunkTokens int
	// Progress receives the estimates and progress lines (nil: silent); ProgressMode picks
	// their form.
	Progress     io.Writer
	ProgressMode progress.Mode

	// afterChunk, when set (tests), is called after each chunk is committed.
	afterChunk func(done int)
}

// DefaultCacheDir is $SENTIBENCH_CACHE/features, or <user cache dir>/sentibench/features.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("SENTIBENCH_CACHE"); d != "" {
		return filepath.Join(d, "features"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("features: no cache directory (set SENTIBENCH_CACHE): %w", err)
	}
	return filepath.Join(d, "sentibench", "features"), nil
}

// DataHash is the SHA-256 of the texts, in order (each length-prefixed).
func DataHash(texts []string) string {
	h := sha256.New()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(texts)))
	h.Write(n[:])
	for _, t := range texts {
		binary.LittleEndian.PutUint64(n[:], uint64(len(t)))
		h.Write(n[:])
		io.WriteString(h, t)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Key is the identity of the cache of texts under model (see the package documentation).
func Key(model *bert.Model, dataHash string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\nweights %s\ntokenizer %s\nmax_len %d\ndata %s\ndtype f16\n",
		Format, model.WeightsHash(), model.Tokenizer.Fingerprint(), model.MaxLen(), dataHash)
	if model.TruncateHead > 0 { // absent otherwise, so that plain caches keep their keys
		fmt.Fprintf(h, "truncate_head %d\n", model.TruncateHead)
	}
	if k := model.LayersKey(); k != "" { // absent for the last hidden state, as above
		fmt.Fprintf(h, "layers %s\n", k)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// batch is one encoder call: positions [lo, hi) of the processing order.
type batch struct{ lo, hi int }

// plan is the processing order and its cut into batches and chunks. It depends only on the
// lengths and the three sizes, so a resumed build (or every shard of a sharded one) recomputes
// the same plan.
type plan struct {
	order   []int   // review indices, longest first (stable)
	offsets []int64 // row offset of each review (by review index)
	batches []batch
	chunks  []int // chunks[c] = first batch of chunk c; chunks[len] = len(batches)
	total   int64
	// base is the row of the cache at which the data file being written starts: 0 for a
	// whole cache, the shard's first row for a shard.
	base int64
}

func makePlan(lengths []int32, batchSize, batchTokens, chunkTokens int) plan {
	var p plan
	p.order = make([]int, len(lengths))
	for i := range p.order {
		p.order[i] = i
	}
	sort.SliceStable(p.order, func(a, b int) bool { return lengths[p.order[a]] > lengths[p.order[b]] })
	p.offsets = make([]int64, len(lengths))
	for _, i := range p.order {
		p.offsets[i] = p.total
		p.total += int64(lengths[i])
	}
	for lo := 0; lo < len(p.order); {
		hi, tokens := lo, 0
		for hi < len(p.order) && hi-lo < batchSize && (hi == lo || tokens+int(lengths[p.order[hi]]) <= batchTokens) {
			tokens += int(lengths[p.order[hi]])
			hi++
		}
		p.batches = append(p.batches, batch{lo, hi})
		lo = hi
	}
	p.chunks = chunkBatches(p.batches, p.order, lengths, chunkTokens)
	return p
}

// chunkBatches cuts batches into chunks of about chunkTokens word pieces: the first batch of
// each chunk, then len(batches).
func chunkBatches(batches []batch, order []int, lengths []int32, chunkTokens int) []int {
	var chunks []int
	tokens := chunkTokens // start a chunk at batch 0
	for b, bt := range batches {
		if tokens >= chunkTokens {
			chunks = append(chunks, b)
			tokens = 0
		}
		for _, i := range order[bt.lo:bt.hi] {
			tokens += int(lengths[i])
		}
	}
	return append(chunks, len(batches))
}

// target is the cache a call builds, shards or merges: the encoder that computes it, its key
// and its directory.
type target struct {
	m        *bert.Model
	key      string
	dataHash string
	reviews  int
	// dir is the cache's directory: <root>/<name>-<key[:16]>, or the directory Options.CacheDir
	// names when it is a cache itself (holds meta.json).
	dir string
	say func(format string, a ...any)
}

// newTarget loads the encoder (unless opt.Model is given), checks its settings, and finds the
// cache directory of texts under it. When opt.CacheDir is itself a cache directory (it holds
// meta.json, as the path Build returns does) it is used as the cache only when its key is the
// one asked for; a cache built with other settings is refused with an error naming each
// difference (encoder layers, truncation, weights, texts, ...).
func newTarget(ctx context.Context, texts []string, opt Options) (*target, error) {
	if len(texts) == 0 {
		return nil, fmt.Errorf("features: no texts")
	}
	m := opt.Model
	if m == nil {
		if opt.Encoder == "" {
			return nil, fmt.Errorf("features: no encoder given")
		}
		cpu := opt.CPU
		if cpu == nil {
			var err error
			if cpu, err = defaultCPU(); err != nil {
				return nil, err
			}
		}
		dir, err := bert.Resolve(ctx, opt.Encoder, bert.ResolveOptions{Progress: opt.Progress, ProgressMode: opt.ProgressMode})
		if err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
		if m, err = bert.Load(dir, cpu); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
		m.TruncateHead = opt.TruncateHead
		m.Layers = opt.Layers
	}
	if err := m.CheckTruncateHead(m.TruncateHead); err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	if err := m.CheckLayers(m.Layers); err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	root := opt.CacheDir
	if root == "" {
		var err error
		if root, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	t := &target{m: m, dataHash: DataHash(texts), reviews: len(texts)}
	t.key = Key(m, t.dataHash)
	t.say = func(format string, a ...any) {
		if opt.Progress != nil && opt.ProgressMode != progress.Quiet {
			fmt.Fprintf(opt.Progress, format+"\n", a...)
		}
	}
	if _, err := os.Stat(filepath.Join(root, ShardFile)); err == nil {
		return nil, fmt.Errorf("features: %s is a shard of a feature cache, not a cache: merge the shards first (sentibench embed --merge), then give the merged cache or the root of the caches (such as %s)",
			root, filepath.Dir(root))
	}
	if _, err := os.Stat(filepath.Join(root, MetaFile)); err == nil {
		have, err := readMeta(root)
		if err != nil {
			return nil, err
		}
		if have.Key != t.key {
			return nil, fmt.Errorf("features: the feature cache %s was built with other settings than asked: %s; give the root of the caches (such as %s) to find or build the cache of these settings",
				root, strings.Join(differences(have, t.identity()), "; "), filepath.Dir(root))
		}
		t.dir = root
		return t, nil
	}
	// The directory name says what the encoder is (not where it was loaded from: the same
	// weights under another path or hub id are the same cache).
	name := fmt.Sprintf("%s-L%d-H%d", safeName(m.Config.ModelType), m.Config.Layers, m.Hidden())
	t.dir = filepath.Join(root, name+"-"+t.key[:16])
	return t, nil
}

// identity is the part of the cache's meta.json that its key is made of.
func (t *target) identity() Meta {
	m := t.m
	return Meta{Format: Format, Key: t.key, Encoder: m.Dir, ModelType: m.Config.ModelType, WeightsHash: m.WeightsHash(),
		TokenizerHash: m.Tokenizer.Fingerprint(), MaxLen: m.MaxLen(), TruncateHead: m.TruncateHead, Layers: m.LayersKey(),
		DataHash: t.dataHash, Reviews: t.reviews, Dim: m.Hidden(), DType: "float16"}
}

// meta is the cache's meta.json for plan p made with the sizes of opt.
func (t *target) meta(p plan, opt Options) Meta {
	meta := t.identity()
	meta.WordPieces, meta.Bytes = p.total, p.total*int64(meta.Dim)*2
	meta.BatchTokens, meta.BatchSize, meta.ChunkTokens = opt.BatchTokens, opt.BatchSize, opt.ChunkTokens
	meta.Chunks, meta.EncoderWorkers = len(p.chunks)-1, t.m.Workers()
	return meta
}

// differences names, one by one, the settings of the key in which have differs from want.
func differences(have, want Meta) []string {
	var out []string
	if have.WeightsHash != want.WeightsHash || have.ModelType != want.ModelType || have.Dim != want.Dim {
		out = append(out, fmt.Sprintf("encoder: the cache's is a %s of hidden size %d, weights %.12s (from %s); asked a %s of hidden size %d, weights %.12s (from %s)",
			have.ModelType, have.Dim, have.WeightsHash, have.Encoder, want.ModelType, want.Dim, want.WeightsHash, want.Encoder))
	}
	if have.TokenizerHash != want.TokenizerHash {
		out = append(out, fmt.Sprintf("tokenizer: the cache's %.12s, asked %.12s", have.TokenizerHash, want.TokenizerHash))
	}
	if have.MaxLen != want.MaxLen {
		out = append(out, fmt.Sprintf("maximum length: the cache's %d word pieces, asked %d", have.MaxLen, want.MaxLen))
	}
	if have.Layers != want.Layers {
		out = append(out, fmt.Sprintf("encoder layers: the cache has %s, asked %s", describeLayers(have.Layers), describeLayers(want.Layers)))
	}
	if have.TruncateHead != want.TruncateHead {
		out = append(out, fmt.Sprintf("truncation: the cache has %s, asked %s", describeTruncation(have.TruncateHead), describeTruncation(want.TruncateHead)))
	}
	if have.DataHash != want.DataHash {
		out = append(out, fmt.Sprintf("texts: the cache holds %d reviews (data %.12s), asked %d reviews (data %.12s): another data set, --limit or --seed",
			have.Reviews, have.DataHash, want.Reviews, want.DataHash))
	}
	if len(out) == 0 { // the same settings under another key: another format of the key
		out = append(out, fmt.Sprintf("key %.16s, asked %.16s", have.Key, want.Key))
	}
	return out
}

func describeLayers(key string) string {
	if key == "" {
		return "the last hidden state"
	}
	return "the mean of hidden states " + key
}

func describeTruncation(head int) string {
	if head == 0 {
		return "the first word pieces of a long review"
	}
	return fmt.Sprintf("head+tail truncation with a head of %d word pieces", head)
}

// complete says whether dir holds the complete cache of key: meta.json, all chunks done,
// index.bin and the data file of the right size.
func complete(dir, key string) bool {
	meta, err := readMeta(dir)
	if err != nil || meta.Key != key {
		return false
	}
	done, err := readProgress(dir, key, meta.Chunks)
	if err != nil || done != meta.Chunks {
		return false
	}
	if _, _, err := readIndex(dir, meta); err != nil {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, DataFile))
	return err == nil && st.Size() == meta.Bytes
}

// planSizes fills opt's batch and chunk sizes: from a stored plan when resuming one (whatever
// the options say now), else the defaults where opt gives none.
func planSizes(opt *Options, stored *Meta) {
	if stored != nil {
		opt.BatchSize, opt.BatchTokens, opt.ChunkTokens = stored.BatchSize, stored.BatchTokens, stored.ChunkTokens
		return
	}
	opt.BatchSize = defaultInt(opt.BatchSize, 128)
	opt.BatchTokens = defaultInt(opt.BatchTokens, 8192)
	opt.ChunkTokens = defaultInt(opt.ChunkTokens, 65536)
}

// Build makes sure the feature cache of texts under the encoder exists and is complete, and
// returns its directory (open it with Open). texts are the reviews by their stable index: the
// cache's review i is texts[i]. A complete cache with the same key is reused at once (the texts
// are hashed, the encoder loaded, nothing is computed); an incomplete one is resumed from its
// last complete chunk. Cancelling ctx stops the build after the batch in progress; what was
// committed stays for the next call.
func Build(ctx context.Context, texts []string, opt Options) (string, error) {
	t, err := newTarget(ctx, texts, opt)
	if err != nil {
		return "", err
	}
	m, key, dir, say := t.m, t.key, t.dir, t.say

	// One process at a time builds a cache directory.
	unlock, err := lockDir(dir)
	if err != nil {
		return "", err
	}
	defer unlock()

	// An existing directory: reuse when complete, resume when not, rebuild when it is not ours.
	if complete(dir, key) {
		say("Feature cache: %s (complete, reused)", dir)
		return dir, nil
	}
	meta, err := readMeta(dir)
	switch {
	case err == nil && meta.Key == key:
	case err == nil:
		say("Feature cache: %s holds another key (%.16s); rebuilding", dir, meta.Key)
		meta = Meta{}
	case errors.Is(err, fs.ErrNotExist):
		meta = Meta{}
	default:
		say("Feature cache: %v; rebuilding", err)
		meta = Meta{}
	}

	// Tokenize every review (the lengths decide the layout).
	lengths, ids, err := tokenize(ctx, m, texts)
	if err != nil {
		return "", err
	}
	if meta.Key == key {
		planSizes(&opt, &meta)
	} else {
		planSizes(&opt, nil)
	}
	p := makePlan(lengths, opt.BatchSize, opt.BatchTokens, opt.ChunkTokens)
	want := t.meta(p, opt)

	done := 0
	if meta.Key == key {
		if meta.WordPieces != want.WordPieces || meta.Reviews != want.Reviews || meta.Chunks != want.Chunks {
			return "", fmt.Errorf("features: %s: meta.json (%d reviews, %d word pieces, %d chunks) does not match the texts (%d, %d, %d) under the same key; delete it to rebuild",
				dir, meta.Reviews, meta.WordPieces, meta.Chunks, want.Reviews, want.WordPieces, want.Chunks)
		}
		if done, err = readProgress(dir, key, meta.Chunks); err != nil {
			say("Feature cache: %v; starting over", err)
			done = 0
		}
		if _, _, err := readIndex(dir, meta); err != nil {
			say("Feature cache: %v; starting over", err)
			done, meta = 0, Meta{}
		} else if st, err := os.Stat(filepath.Join(dir, DataFile)); err != nil || st.Size() != meta.Bytes {
			say("Feature cache: %s is missing or has the wrong size; starting over", filepath.Join(dir, DataFile))
			done, meta = 0, Meta{}
		}
	}
	if meta.Key != key { // a fresh start
		if err := start(dir, want, p, lengths); err != nil {
			return "", err
		}
	}
	w := work{dir: dir, key: key, dim: want.Dim, p: p, rows: want.WordPieces,
		what: fmt.Sprintf("%d reviews, %d word pieces", want.Reviews, want.WordPieces)}
	if err := run(ctx, m, w, ids, done, opt, say); err != nil {
		return "", err
	}
	return dir, nil
}

// defaultCPU is the BLAS of $SENTIBENCH_BLAS with one thread, and GOMAXPROCS workers.
func defaultCPU() (*nn.CPU, error) {
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	impl.SetThreads(1)
	return &nn.CPU{BLAS: impl, Workers: runtime.GOMAXPROCS(0)}, nil
}

// lockDir creates dir and takes an exclusive lock on dir/lock (flock), so that two processes
// never build the same cache at once; the lock goes with the process, even when it is killed.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("features: another process is building %s (it holds %s)", dir, f.Name())
		}
		return nil, fmt.Errorf("features: locking %s: %w", f.Name(), err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func defaultInt(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// safeName keeps a directory name to letters, digits, '-', '_' and '.'.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
	if s == "" || s == "." || s == ".." {
		return "encoder"
	}
	return s
}

// tokenize encodes every text for the model, spread over the CPU's workers.
func tokenize(ctx context.Context, m *bert.Model, texts []string) ([]int32, [][]int32, error) {
	ids := make([][]int32, len(texts))
	lengths := make([]int32, len(texts))
	workers := max(m.Workers(), 1)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(texts); i += workers {
				if i%1024 == 0 && ctx.Err() != nil {
					return
				}
				ids[i] = m.Encode(texts[i])
				lengths[i] = int32(len(ids[i]))
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return lengths, ids, nil
}

// start lays out a fresh cache: meta.json, index.bin, an empty progress.json, and a data file
// of the full size, after checking the disk has room.
func start(dir string, meta Meta, p plan, lengths []int32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	for _, f := range []string{ProgressFile, MetaFile, IndexFile, DataFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("features: %w", err)
		}
	}
	if err := checkFree(dir, meta.Bytes); err != nil {
		return err
	}
	idx, err := encodeIndex(meta.Key, meta.Dim, p.offsets, lengths)
	if err != nil {
		return err
	}
	if err := createSized(filepath.Join(dir, DataFile), meta.Bytes); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, ProgressFile), progressState{Key: meta.Key, Chunks: meta.Chunks}); err != nil {
		return err
	}
	if err := atomicWrite(filepath.Join(dir, IndexFile), idx); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, MetaFile), meta) // last: its presence means the layout is in place
}

func gib(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }

// work is what run computes: the batches of p (a whole cache's, or a shard's) into dir's data
// file, whose first row is the row p.base of the cache, committing progress.json under key
// after each of p's chunks.
type work struct {
	dir  string
	key  string
	dim  int
	p    plan
	rows int64  // word pieces of p's batches
	what string // what is built, for the first progress line
}

// run computes the chunks of w from done on and commits each.
func run(ctx context.Context, m *bert.Model, w work, ids [][]int32, done int, opt Options, say func(string, ...any)) error {
	f, err := os.OpenFile(filepath.Join(w.dir, DataFile), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("features: %w", err)
	}
	defer f.Close()
	p, H := w.p, w.dim
	chunks := len(p.chunks) - 1
	var doneTokens int64
	for _, bt := range p.batches[:p.chunks[done]] {
		for _, i := range p.order[bt.lo:bt.hi] {
			doneTokens += int64(len(ids[i]))
		}
	}
	left := w.rows - doneTokens
	say("Feature cache: %s x %d float16 = %s in %s", w.what, H, gib(w.rows*int64(H)*2), w.dir)
	if done > 0 {
		say("Feature cache: resuming after %d of %d chunks (%d word pieces left)", done, chunks, left)
	}
	var fwd Forwarder = m
	if opt.OnDevice != nil && done < chunks {
		if fwd, err = opt.OnDevice(m); err != nil {
			return fmt.Errorf("features: %w", err)
		}
	}
	rep := progress.New(opt.Progress, progress.Options{Label: "features", Unit: "word pieces", Total: w.rows, Mode: opt.ProgressMode})
	rep.Start(doneTokens)
	defer rep.Done()
	var out [][]float32
	var states []float32
	var buf []byte
	first := true
	for c := done; c < chunks; c++ {
		for _, bt := range p.batches[p.chunks[c]:p.chunks[c+1]] {
			if err := ctx.Err(); err != nil {
				return err
			}
			t0 := time.Now()
			rev := p.order[bt.lo:bt.hi]
			seqs := make([][]int32, len(rev))
			tokens := 0
			for k, i := range rev {
				seqs[k] = ids[i]
				tokens += len(ids[i])
			}
			// The outputs are views into one buffer, in file order.
			if cap(out) < len(seqs) {
				out = make([][]float32, len(seqs))
			}
			out = out[:len(seqs)]
			if cap(states) < tokens*H {
				states = make([]float32, tokens*H)
			}
			at := 0
			for k, s := range seqs {
				out[k] = states[at : at+len(s)*H : at+len(s)*H]
				at += len(s) * H
			}
			if err := fwd.ForwardInto(seqs, out); err != nil {
				return fmt.Errorf("features: %w", err)
			}
			// The batch's reviews are consecutive in the file: one write.
			n := tokens * H * 2
			if cap(buf) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			for j, v := range states[:tokens*H] {
				binary.LittleEndian.PutUint16(buf[2*j:], safetensors.F32ToF16(v))
			}
			if _, err := f.WriteAt(buf, (p.offsets[rev[0]]-p.base)*int64(H)*2); err != nil {
				return fmt.Errorf("features: writing %s: %w", f.Name(), err)
			}
			rep.Add(int64(tokens))
			if first {
				first = false
				if el := time.Since(t0); left > int64(tokens) && el > 0 {
					rate := float64(tokens) / el.Seconds()
					say("Feature cache: first batch %d word pieces in %.1fs (%.0f/s); estimated %s for the rest (the first batch holds the longest reviews, so this errs long)",
						tokens, el.Seconds(), rate, time.Duration(float64(left-int64(tokens))/rate*float64(time.Second)).Round(time.Second))
				}
			}
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("features: syncing %s: %w", f.Name(), err)
		}
		if err := writeJSON(filepath.Join(w.dir, ProgressFile), progressState{Key: w.key, ChunksDone: c + 1, Chunks: chunks}); err != nil {
			return err
		}
		if opt.afterChunk != nil {
			opt.afterChunk(c + 1)
		}
	}
	return nil
}

func atomicWrite(path string, b []byte) error {
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	return nil
}
