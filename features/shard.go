package features

// Sharded builds: N processes (on one machine or many, over a shared file system) each compute
// one part of a cache, then Merge joins the parts into the cache an unsharded build writes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Shard is shard K of N of a cache build (0 <= K < N): the batches of the cache's plan, cut
// into N contiguous runs of about as many word pieces each.
type Shard struct{ K, N int }

// ParseShard reads "K/N" (such as "0/2").
func ParseShard(s string) (Shard, error) {
	k, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("%q is not K/N (shard K of N, such as 0/2)", s)
	}
	var sh Shard
	var err error
	if sh.K, err = strconv.Atoi(strings.TrimSpace(k)); err != nil {
		return Shard{}, fmt.Errorf("%q is not K/N: K %q is not a number", s, k)
	}
	if sh.N, err = strconv.Atoi(strings.TrimSpace(n)); err != nil {
		return Shard{}, fmt.Errorf("%q is not K/N: N %q is not a number", s, n)
	}
	return sh, sh.Check()
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// Check says whether s names a shard: N >= 1 and 0 <= K < N (shards count from 0).
func (s Shard) Check() error {
	if s.N < 1 {
		return fmt.Errorf("the shard count N must be at least 1")
	}
	if s.K < 0 || s.K >= s.N {
		return fmt.Errorf("the shard number K must be in 0..%d (shards count from 0)", s.N-1)
	}
	return nil
}

// ShardFile describes a shard directory (JSON): which part of which cache it holds.
const ShardFile = "shard.json"

// shardMeta is the content of ShardFile.
type shardMeta struct {
	// Cache is the whole cache's meta.json as an unsharded build in the shard's process would
	// write it: every shard of a cache has the same, but for the encoder's path and
	// encoder_workers.
	Cache  Meta `json:"cache"`
	Shard  int  `json:"shard"`
	Shards int  `json:"shards"`
	// The shard's batches of the cache's plan, [FirstBatch, EndBatch), and its rows of the
	// cache's data file, [FirstRow, FirstRow+Rows): its features.f16 holds those rows.
	FirstBatch int   `json:"first_batch"`
	EndBatch   int   `json:"end_batch"`
	FirstRow   int64 `json:"first_row"`
	Rows       int64 `json:"rows"`
	// Chunks is the number of the shard's own chunks (its progress.json counts them).
	Chunks int `json:"chunks"`
}

// shardDir is the directory of shard s of the cache in dir: beside it, <dir>.shard-K-of-N.
func shardDir(dir string, s Shard) string { return fmt.Sprintf("%s.shard-%d-of-%d", dir, s.K, s.N) }

var shardName = regexp.MustCompile(`^(.*)\.shard-([0-9]+)-of-([0-9]+)$`)

// parseShardDir returns the cache directory and the shard of a shard directory's path.
func parseShardDir(path string) (cache string, s Shard, ok bool) {
	m := shardName.FindStringSubmatch(path)
	if m == nil {
		return "", Shard{}, false
	}
	s.K, _ = strconv.Atoi(m[2])
	s.N, _ = strconv.Atoi(m[3])
	return m[1], s, s.Check() == nil
}

func readShardMeta(dir string) (*shardMeta, error) {
	p := filepath.Join(dir, ShardFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	var sm shardMeta
	if err := json.Unmarshal(b, &sm); err != nil {
		return nil, fmt.Errorf("features: %s is damaged (not valid JSON: %v); delete %s to rebuild the shard", p, err, dir)
	}
	c := sm.Cache
	if c.Format != Format || len(c.Key) != 64 || c.Dim <= 0 || sm.Rows < 0 || sm.FirstRow < 0 || sm.Chunks < 0 ||
		sm.FirstRow > c.WordPieces || sm.Rows > c.WordPieces-sm.FirstRow || sm.FirstBatch < 0 || sm.EndBatch < sm.FirstBatch {
		return nil, fmt.Errorf("features: %s is damaged (format %q, inconsistent sizes or key); delete %s to rebuild the shard", p, c.Format, dir)
	}
	return &sm, nil
}

// shardRange cuts p's batches into n runs of about p.total/n word pieces each, at least one
// batch each (n <= len(p.batches)), and returns the batches [lo, hi) of run k.
func shardRange(p plan, lengths []int32, k, n int) (lo, hi int) {
	cum := make([]int64, len(p.batches)+1) // word pieces before batch b
	for b, bt := range p.batches {
		cum[b+1] = cum[b]
		for _, i := range p.order[bt.lo:bt.hi] {
			cum[b+1] += int64(lengths[i])
		}
	}
	bound := func(j int) int { // the first batch of run j
		if j == 0 {
			return 0
		}
		if j == n {
			return len(p.batches)
		}
		target := float64(p.total) * float64(j) / float64(n)
		b := sort.Search(len(cum), func(b int) bool { return float64(cum[b]) >= target })
		if b > 0 && target-float64(cum[b-1]) < float64(cum[b])-target {
			b-- // the nearer cut
		}
		return b
	}
	// Cuts in order, each run at least one batch.
	prev := 0
	for j := 1; j <= k+1; j++ {
		b := min(max(bound(j), prev+1), len(p.batches)-(n-j))
		if j == k {
			lo = b
		}
		if j == k+1 {
			hi = b
		}
		prev = b
	}
	return lo, hi
}

// BuildShard computes shard s of the feature cache that Build would make with the same texts
// and options, in its own directory beside the cache's (<cache dir>.shard-K-of-N), and returns
// that directory. The shards of one cache may be built at the same time, by separate processes
// on separate machines sharing the cache root; each one tokenizes all texts (the plan of the
// whole cache decides its part) and computes the features of its batches only. A shard resumes
// as Build does. When every shard is built, Merge joins them. When the whole cache is complete
// already, BuildShard computes nothing and returns the cache's directory.
func BuildShard(ctx context.Context, texts []string, opt Options, s Shard) (string, error) {
	if err := s.Check(); err != nil {
		return "", fmt.Errorf("features: shard %s: %w", s, err)
	}
	t, err := newTarget(ctx, texts, opt)
	if err != nil {
		return "", err
	}
	if complete(t.dir, t.key) {
		t.say("Feature cache: %s is complete already; shard %s has nothing to do", t.dir, s)
		return t.dir, nil
	}
	dir := shardDir(t.dir, s)
	_, statErr := os.Stat(dir)
	unlock, err := lockDir(dir)
	if err != nil {
		return "", err
	}
	defer unlock()
	// A shard directory made here is removed again when no shard was laid out in it (the
	// settings cut the cache into fewer batches than shards, or the call was cancelled first).
	laidOut := false
	defer func() {
		if !laidOut && errors.Is(statErr, fs.ErrNotExist) {
			os.RemoveAll(dir)
		}
	}()

	stored, err := readShardMeta(dir)
	switch {
	case err == nil && (stored.Cache.Key != t.key || stored.Shard != s.K || stored.Shards != s.N):
		t.say("Feature cache: %s holds another shard (key %.16s, shard %d/%d); rebuilding", dir, stored.Cache.Key, stored.Shard, stored.Shards)
		stored = nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		t.say("Feature cache: %v; rebuilding the shard", err)
		stored = nil
	}
	lengths, ids, err := tokenize(ctx, t.m, texts)
	if err != nil {
		return "", err
	}
	if stored != nil {
		planSizes(&opt, &stored.Cache)
	} else {
		planSizes(&opt, nil)
	}
	p := makePlan(lengths, opt.BatchSize, opt.BatchTokens, opt.ChunkTokens)
	if s.N > len(p.batches) {
		return "", fmt.Errorf("features: shard %s: the cache's %d reviews make %d encoder batches, fewer than %d shards; cut it into at most %d",
			s, len(texts), len(p.batches), s.N, len(p.batches))
	}
	lo, hi := shardRange(p, lengths, s.K, s.N)
	sp := plan{order: p.order, offsets: p.offsets, batches: p.batches[lo:hi]}
	sp.base = p.offsets[p.order[p.batches[lo].lo]]
	sp.total = p.total - sp.base
	if hi < len(p.batches) {
		sp.total = p.offsets[p.order[p.batches[hi].lo]] - sp.base
	}
	sp.chunks = chunkBatches(sp.batches, sp.order, lengths, opt.ChunkTokens)
	want := shardMeta{Cache: t.meta(p, opt), Shard: s.K, Shards: s.N, FirstBatch: lo, EndBatch: hi,
		FirstRow: sp.base, Rows: sp.total, Chunks: len(sp.chunks) - 1}

	done := 0
	if stored != nil {
		if !sameShard(*stored, want) {
			t.say("Feature cache: %s was planned otherwise (%s); starting over", dir, ShardFile)
			stored = nil
		} else if done, err = readProgress(dir, t.key, want.Chunks); err != nil {
			t.say("Feature cache: %v; starting the shard over", err)
			stored = nil
		} else if st, err := os.Stat(filepath.Join(dir, DataFile)); err != nil || st.Size() != want.Rows*int64(want.Cache.Dim)*2 {
			t.say("Feature cache: %s is missing or has the wrong size; starting the shard over", filepath.Join(dir, DataFile))
			stored = nil
		}
	}
	if stored == nil {
		done = 0
		idx, err := encodeIndex(t.key, want.Cache.Dim, p.offsets, lengths)
		if err != nil {
			return "", err
		}
		if err := startShard(dir, want, idx); err != nil {
			return "", err
		}
	}
	laidOut = true
	w := work{dir: dir, key: t.key, dim: want.Cache.Dim, p: sp, rows: sp.total,
		what: fmt.Sprintf("shard %s, batches %d-%d of %d (%d of %d word pieces)", s, lo, hi-1, len(p.batches), sp.total, p.total)}
	if err := run(ctx, t.m, w, ids, done, opt, t.say); err != nil {
		return "", err
	}
	return dir, nil
}

// sameShard says whether two shard descriptions are the same part of the same plan (the
// encoder's path and worker count aside).
func sameShard(a, b shardMeta) bool {
	a.Cache.Encoder, a.Cache.EncoderWorkers = "", 0
	b.Cache.Encoder, b.Cache.EncoderWorkers = "", 0
	return a == b
}

// startShard lays out a fresh shard: index.bin (the whole cache's), an empty progress.json, a
// data file of the shard's size, and shard.json last.
func startShard(dir string, sm shardMeta, index []byte) error {
	for _, f := range []string{ShardFile, ProgressFile, IndexFile, DataFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("features: %w", err)
		}
	}
	size := sm.Rows * int64(sm.Cache.Dim) * 2
	if err := checkFree(dir, size); err != nil {
		return err
	}
	if err := createSized(filepath.Join(dir, DataFile), size); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, ProgressFile), progressState{Key: sm.Cache.Key, Chunks: sm.Chunks}); err != nil {
		return err
	}
	if err := atomicWrite(filepath.Join(dir, IndexFile), index); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, ShardFile), sm)
}

// Merge joins the shards of the cache that Build would make with the same texts and options
// (built by BuildShard, all N of them, complete) into that cache, and returns its directory.
// The result is the cache an unsharded build writes, byte for byte, when the shards ran with the
// same BLAS and encoder workers as it: the features come from the same encoder batches, in the
// same file order, and meta.json is shard 0's record of the whole cache (its encoder path and
// worker count). The shards are checked first: all N present,
// complete, of this cache's key and of one plan; anything else is an error naming the shard
// and the problem (a shard of other settings beside them is named with its differences).
// After the merged cache is written and checked, the shard directories are removed. A cache
// that is complete already is returned as it is.
func Merge(ctx context.Context, texts []string, opt Options) (string, error) {
	t, err := newTarget(ctx, texts, opt)
	if err != nil {
		return "", err
	}
	unlock, err := lockDir(t.dir)
	if err != nil {
		return "", err
	}
	defer unlock()
	if complete(t.dir, t.key) {
		t.say("Feature cache: %s (complete, reused)", t.dir)
		return t.dir, nil
	}
	shards, err := t.findShards()
	if err != nil {
		return "", err
	}
	// Each shard is locked while it is read, so that none is being built meanwhile.
	metas := make([]*shardMeta, len(shards))
	var index []byte
	var next shardMeta // where shard k must begin
	for k, dir := range shards {
		s := Shard{k, len(shards)}
		unlockShard, err := lockDir(dir)
		if err != nil {
			return "", err
		}
		defer unlockShard()
		sm, err := readShardMeta(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("features: shard %s (%s) has no %s: it has not started; build it with the same settings", s, dir, ShardFile)
		}
		if err != nil {
			return "", err
		}
		if sm.Cache.Key != t.key {
			return "", fmt.Errorf("features: shard %s (%s) belongs to another cache: %s", s, dir, strings.Join(differences(sm.Cache, t.identity()), "; "))
		}
		if sm.Shard != s.K || sm.Shards != s.N {
			return "", fmt.Errorf("features: %s says it is shard %d/%d, its name %s; delete it and build it again", filepath.Join(dir, ShardFile), sm.Shard, sm.Shards, s)
		}
		if k > 0 {
			c0, c := metas[0].Cache, sm.Cache
			if c.BatchSize != c0.BatchSize || c.BatchTokens != c0.BatchTokens || c.ChunkTokens != c0.ChunkTokens {
				return "", fmt.Errorf("features: shard %s was planned with batches of %d reviews, %d word pieces and chunks of %d word pieces, shard %s with %d, %d and %d: every shard needs the same; delete %s and build it again with shard %s's batch size",
					s, c.BatchSize, c.BatchTokens, c.ChunkTokens, Shard{0, s.N}, c0.BatchSize, c0.BatchTokens, c0.ChunkTokens, dir, Shard{0, s.N})
			}
			if c.WordPieces != c0.WordPieces || c.Chunks != c0.Chunks || c.Reviews != c0.Reviews {
				return "", fmt.Errorf("features: shard %s plans %d word pieces in %d chunks, shard %s %d in %d; delete %s and build it again", s, c.WordPieces, c.Chunks, Shard{0, s.N}, c0.WordPieces, c0.Chunks, dir)
			}
		}
		if sm.FirstBatch != next.EndBatch || sm.FirstRow != next.FirstRow+next.Rows || sm.EndBatch == sm.FirstBatch {
			return "", fmt.Errorf("features: shard %s holds batches %d-%d (rows from %d), want them from batch %d (row %d); delete %s and build it again",
				s, sm.FirstBatch, sm.EndBatch-1, sm.FirstRow, next.EndBatch, next.FirstRow+next.Rows, dir)
		}
		if done, err := readProgress(dir, t.key, sm.Chunks); err != nil {
			return "", err
		} else if done != sm.Chunks {
			return "", fmt.Errorf("features: shard %s (%s) is incomplete (%d of %d chunks built); run its build again to finish it", s, dir, done, sm.Chunks)
		}
		data := filepath.Join(dir, DataFile)
		if st, err := os.Stat(data); err != nil {
			return "", fmt.Errorf("features: shard %s: %w", s, err)
		} else if st.Size() != sm.Rows*int64(sm.Cache.Dim)*2 {
			return "", fmt.Errorf("features: %s is %d bytes, want %d (truncated or damaged); delete %s and build the shard again", data, st.Size(), sm.Rows*int64(sm.Cache.Dim)*2, dir)
		}
		idx, err := os.ReadFile(filepath.Join(dir, IndexFile))
		if err != nil {
			return "", fmt.Errorf("features: shard %s: %w", s, err)
		}
		if k == 0 {
			if _, _, err := readIndex(dir, sm.Cache); err != nil {
				return "", err
			}
			index = idx
		} else if !bytes.Equal(idx, index) {
			return "", fmt.Errorf("features: %s differs from shard %s's; delete %s and build it again", filepath.Join(dir, IndexFile), Shard{0, s.N}, dir)
		}
		metas[k], next = sm, *sm
	}
	meta := metas[0].Cache
	if next.FirstRow+next.Rows != meta.WordPieces {
		return "", fmt.Errorf("features: the %d shards hold %d of the cache's %d rows; delete them and build them again", len(shards), next.FirstRow+next.Rows, meta.WordPieces)
	}
	// meta.json is shard 0's record of the whole cache: with the encoder's path and worker count
	// of the shards (an unsharded build records its own). The worker count can change the
	// features' rounding (OpenBLAS's products depend on how the rows are split), so shards of
	// several counts are named.
	workers := map[int]bool{}
	for _, sm := range metas {
		workers[sm.Cache.EncoderWorkers] = true
	}
	if len(workers) > 1 {
		counts := make([]string, 0, len(metas))
		for _, sm := range metas {
			counts = append(counts, strconv.Itoa(sm.Cache.EncoderWorkers))
		}
		t.say("Feature cache: warning: the shards ran the encoder with %s workers (shard by shard); with a BLAS whose rounding depends on the split of the rows (OpenBLAS), the merged cache is not byte for byte an unsharded build's (its features differ in float rounding)",
			strings.Join(counts, ", "))
	}

	if err := t.writeMerged(ctx, shards, meta, index); err != nil {
		return "", err
	}
	if !complete(t.dir, t.key) {
		return "", fmt.Errorf("features: the merged cache %s does not read back complete; the shards are kept", t.dir)
	}
	for _, dir := range shards {
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("features: the cache %s is merged, but removing the shard %s failed: %w", t.dir, dir, err)
		}
	}
	t.say("Feature cache: %d shards merged into %s (%d reviews, %d word pieces, %s); the shards are removed",
		len(shards), t.dir, meta.Reviews, meta.WordPieces, gib(meta.Bytes))
	return t.dir, nil
}

// findShards returns the directories of shards 0..N-1 of t's cache, or an error saying which
// are missing (and which shards of other caches lie beside them, with their differences).
func (t *target) findShards() ([]string, error) {
	found, err := filepath.Glob(t.dir + ".shard-*-of-*")
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	byN := map[int]map[int]string{}
	for _, dir := range found {
		if _, s, ok := parseShardDir(dir); ok {
			if byN[s.N] == nil {
				byN[s.N] = map[int]string{}
			}
			byN[s.N][s.K] = dir
		}
	}
	switch len(byN) {
	case 0:
		return nil, fmt.Errorf("features: no shard of the cache %s to merge (no %s.shard-K-of-N); build them first with the same settings%s",
			t.dir, filepath.Base(t.dir), t.otherShards(func(Shard) bool { return true }))
	case 1:
	default:
		var counts []string
		for n, ks := range byN {
			counts = append(counts, fmt.Sprintf("%d of %d", len(ks), n))
		}
		sort.Strings(counts)
		return nil, fmt.Errorf("features: the shards of %s were cut in different counts (%s); keep the shards of one count, delete the others",
			t.dir, strings.Join(counts, ", "))
	}
	n, ks := 0, map[int]string(nil)
	for count, dirs := range byN { // the one count
		n, ks = count, dirs
	}
	out := make([]string, n)
	var missing []string
	for k := range out {
		if out[k] = ks[k]; out[k] == "" {
			missing = append(missing, Shard{k, n}.String())
		}
	}
	if len(missing) > 0 {
		want := func(s Shard) bool { return s.N == n && ks[s.K] == "" }
		return nil, fmt.Errorf("features: shard %s of the cache %s is missing (built: %d of %d); build it with the same settings, then merge again%s",
			strings.Join(missing, ", "), t.dir, n-len(missing), n, t.otherShards(want))
	}
	return out, nil
}

// otherShards describes the shards of other caches beside t's that pick selects: what their
// settings differ in. Empty when there is none.
func (t *target) otherShards(pick func(Shard) bool) string {
	found, _ := filepath.Glob(filepath.Join(filepath.Dir(t.dir), "*.shard-*-of-*"))
	var lines []string
	for _, dir := range found {
		cache, s, ok := parseShardDir(dir)
		if !ok || cache == t.dir || !pick(s) {
			continue
		}
		sm, err := readShardMeta(dir)
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s (unreadable: %v)", dir, err))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s is shard %s of a cache built with other settings: %s", dir, s, strings.Join(differences(sm.Cache, t.identity()), "; ")))
	}
	if len(lines) == 0 {
		return ""
	}
	return "; " + strings.Join(lines, "; ")
}

// writeMerged writes the cache's files from the checked shards: the data file (the shards'
// files one after another), index.bin, a complete progress.json, and meta.json last (its
// presence means the layout is in place).
func (t *target) writeMerged(ctx context.Context, shards []string, meta Meta, index []byte) error {
	dir := t.dir
	for _, f := range []string{MetaFile, ProgressFile, IndexFile, DataFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("features: %w", err)
		}
	}
	if err := checkFree(dir, meta.Bytes); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(dir, DataFile))
	if err != nil {
		return fmt.Errorf("features: %w", err)
	}
	defer out.Close()
	for _, sd := range shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		in, err := os.Open(filepath.Join(sd, DataFile))
		if err != nil {
			return fmt.Errorf("features: %w", err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if err != nil {
			return fmt.Errorf("features: copying %s into %s: %w", in.Name(), out.Name(), err)
		}
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("features: syncing %s: %w", out.Name(), err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if err := atomicWrite(filepath.Join(dir, IndexFile), index); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, ProgressFile), progressState{Key: meta.Key, ChunksDone: meta.Chunks, Chunks: meta.Chunks}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, MetaFile), meta)
}

// checkFree fails when the file system of dir has less than size bytes free.
func checkFree(dir string, size int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil {
		if free := int64(st.Bavail) * st.Bsize; free < size {
			return fmt.Errorf("features: %s needs %s for the cache, only %s is free", dir, gib(size), gib(free))
		}
	}
	return nil
}

// createSized creates (or truncates) the file at path with size zero bytes.
func createSized(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("features: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	return nil
}
