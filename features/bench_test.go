package features

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/nn"
)

// BenchmarkBatch measures reading batches from a mapped cache: 128 reviews of 100-512 word
// pieces at width 384 (all-MiniLM-L6-v2), float16 to float32, time-major with padding, as the
// bigru trainer reads them. The cache is synthetic (random bytes in a real layout).
func BenchmarkBatch(b *testing.B) {
	const n, dim = 2048, 384
	r := rand.New(rand.NewPCG(1, 2))
	lengths := make([]int32, n)
	for i := range lengths {
		lengths[i] = int32(100 + r.IntN(413))
	}
	p := makePlan(lengths, 128, 8192, 1<<20)
	dir := b.TempDir()
	meta := Meta{Format: Format, Key: strings.Repeat("ab", 32), Reviews: n, Dim: dim, WordPieces: p.total,
		Bytes: p.total * dim * 2, DType: "float16", BatchTokens: 8192, BatchSize: 128, ChunkTokens: 1 << 20, Chunks: len(p.chunks) - 1}
	if err := start(dir, meta, p, lengths); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, meta.Bytes)
	for i := range data {
		data[i] = byte(r.Uint32() & 0x3b) // small finite float16 values
	}
	if err := os.WriteFile(filepath.Join(dir, DataFile), data, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := writeJSON(filepath.Join(dir, ProgressFile), progressState{Key: meta.Key, ChunksDone: meta.Chunks, Chunks: meta.Chunks}); err != nil {
		b.Fatal(err)
	}
	c, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// Batches as the recipe makes them: a pool sorted by length, cut into 128s.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	r.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	var batches [][]int
	for s := 0; s+128 <= n; s += 128 {
		bt := slices.Clone(order[s : s+128])
		slices.SortStableFunc(bt, func(x, y int) int { return c.Length(y) - c.Length(x) })
		batches = append(batches, bt)
	}
	var in struct{ tokens int }
	input := &nn.Input{}
	k := 0
	for b.Loop() {
		if err := c.BatchInto(batches[k%len(batches)], input); err != nil {
			b.Fatal(err)
		}
		in.tokens += input.Tokens()
		k++
	}
	b.ReportMetric(float64(in.tokens)/b.Elapsed().Seconds(), "word-pieces/s")
	b.ReportMetric(float64(in.tokens*dim*2)/b.Elapsed().Seconds()/(1<<20), "MiB/s")
}
