//go:build sentibench_cuda

package gpu

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
)

// BenchmarkBiGRUEpoch times one epoch of the recipe's bigru head (input 384, the width of
// all-MiniLM-L6-v2's features) over cached features: training on the first 17,500 sequences and
// evaluating the next 7,500, batches of 128 drawn as the recipe draws them. The features are
// random rows of a fixed pool (the encoder is not part of the timing), uploaded per batch as a
// feature cache's would be. The sequence lengths come from SENTIBENCH_BIGRU_LENGTHS, a file of
// word-piece counts (one per line; scripts/gpu-bundle.sh writes IMDB's); without it the
// benchmark is skipped. Metrics: epoch_s, and peak_MiB of the device pool.
func BenchmarkBiGRUEpoch(b *testing.B) {
	lengths := lengthsFromEnv(b)
	d := device(b)
	tr := newBiGRUHead(b, d, 384)
	defer tr.Close()
	nTrain := min(17500, len(lengths)*7/10)
	idx := make([]int, len(lengths))
	for i := range idx {
		idx[i] = i
	}
	const dim, poolRows = 384, 1 << 16
	r := rand.New(rand.NewPCG(5, 5))
	pool := make([]float32, poolRows*dim)
	for i := range pool {
		pool[i] = float32(r.NormFloat64())
	}
	labels := make([]float32, len(lengths))
	for i := range labels {
		labels[i] = float32(r.IntN(2))
	}
	var in nn.Input
	var y []float32
	batch := func(ex []int) (*nn.Input, []float32) {
		y = fillBatch(&in, y, ex, lengths, labels, dim, func(_, e, t int) []float32 {
			row := (e*512 + t) % poolRows
			return pool[row*dim : (row+1)*dim]
		})
		return &in, y
	}
	rng := data.NewSplitMix64(1234)
	dropRNG := nn.NewRNG(1)
	for i := 0; i < b.N; i++ {
		d.ResetPeak()
		start := time.Now()
		headEpoch(b, tr, idx, nTrain, lengths, rng, dropRNG, batch)
		b.ReportMetric(time.Since(start).Seconds(), "epoch_s")
		b.ReportMetric(float64(d.PeakBytes())/(1<<20), "peak_MiB")
	}
}

// newBiGRUHead lays the recipe's bigru head over features of width dim out on the device, its
// weights (seed 1234) copied up.
func newBiGRUHead(b *testing.B, d *Device, dim int) *Trainer {
	cfg, _ := nn.DefaultConfig(nn.KindBiGRU, 0)
	cfg.InputDim = dim
	m, err := nn.NewModel(nn.NewCPU(blas.Gonum{}, 1), cfg, nn.NewRNG(1234))
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTrainer(d, m, nn.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Push(nil); err != nil {
		tr.Close()
		b.Fatal(err)
	}
	return tr
}

// headEpoch runs one epoch of the head: training on idx[:nTrain] in the recipe's batches of 128
// (drawn with rng), then evaluating idx[nTrain:]; batch gives each batch's input and labels.
func headEpoch(b *testing.B, tr *Trainer, idx []int, nTrain int, lengths []int, rng *data.SplitMix64, dropRNG *nn.RNG,
	batch func(ex []int) (*nn.Input, []float32)) {
	for _, ex := range data.BucketBatches(idx[:nTrain], lengths, 128, rng) {
		in, y := batch(ex)
		if _, err := tr.Step(in, nn.NewBCEWithLogits(y), nn.Train, dropRNG); err != nil {
			b.Fatal(err)
		}
		if err := tr.Update(); err != nil {
			b.Fatal(err)
		}
	}
	for _, ex := range data.EvalBatches(idx[nTrain:], lengths, 128) {
		in, y := batch(ex)
		if _, err := tr.Step(in, nn.NewBCEWithLogits(y), nn.Eval, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// fillBatch lays the features of the examples ex (longest first) out time-major in in, zero past
// each one's end, row(k, e, t) giving example e's (the k-th of the batch) features at step t;
// it returns the labels appended to y[:0].
func fillBatch(in *nn.Input, y []float32, ex, lengths []int, labels []float32, dim int, row func(k, e, t int) []float32) []float32 {
	B, T := len(ex), lengths[ex[0]]
	*in = nn.Input{Lengths: in.Lengths[:0], T: T, Dim: dim, Feats: resize(in.Feats, T*B*dim)}
	clear(in.Feats)
	y = y[:0]
	for k, e := range ex {
		in.Lengths = append(in.Lengths, lengths[e])
		y = append(y, labels[e])
		for t := 0; t < lengths[e]; t++ {
			copy(in.Feats[(t*B+k)*dim:(t*B+k+1)*dim], row(k, e, t))
		}
	}
	return y
}

// lengthsFromEnv reads the word-piece lengths of SENTIBENCH_BIGRU_LENGTHS, skipping the
// benchmark when it is not set.
func lengthsFromEnv(b *testing.B) []int {
	path := os.Getenv("SENTIBENCH_BIGRU_LENGTHS")
	if path == "" {
		b.Skip("SENTIBENCH_BIGRU_LENGTHS is not set")
	}
	return readLengths(b, path)
}

func readLengths(b *testing.B, path string) []int {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var out []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				b.Fatalf("%s: bad length %q", path, s)
			}
			out = append(out, n)
		}
	}
	if err := sc.Err(); err != nil || len(out) < 10 {
		b.Fatalf("%s: %d lengths (%v)", path, len(out), err)
	}
	return out
}

// BenchmarkBiGRUEncoderEpoch measures what the feature cache saves on a GPU: one epoch of the
// recipe's bigru head (train on 70% of the reviews, evaluate the rest, batches of 128 drawn as the
// recipe draws them) over cached features, and the same epoch recomputing the frozen encoder for
// every batch (the seed's way), with random encoders of bert-base's shape (the seed's encoder) and
// of all-MiniLM-L6-v2's. The reviews are the first SENTIBENCH_ENCODER_REVIEWS (default 3,000)
// word-piece lengths of SENTIBENCH_BIGRU_LENGTHS (IMDB's, truncated at 512; see
// BenchmarkBiGRUEpoch), with random ids; cached features are random rows uploaded per batch as a
// feature cache's are. The encoder's features come back to the host and go up to the head again,
// as in `sentibench train --device cuda --feature-cache none`. Metrics: cached_s, recomputed_s,
// their ratio (x), the encoder's word pieces per second (enc_tok/s), peak_MiB of the pool.
func BenchmarkBiGRUEncoderEpoch(b *testing.B) {
	lengths := lengthsFromEnv(b)
	n := len(lengths)
	if v, err := strconv.Atoi(os.Getenv("SENTIBENCH_ENCODER_REVIEWS")); err == nil && v > 0 {
		n = min(n, v)
	} else {
		n = min(n, 3000)
	}
	lengths = lengths[:n]
	d := device(b)
	for _, s := range []bertShape{{"bert-base", 12, 768, 12, 3072, 30522}, {"minilm-l6", 6, 384, 12, 1536, 30522}} {
		b.Run(s.name, func(b *testing.B) {
			dir := b.TempDir()
			writeRandomBERT(b, dir, s)
			m := loadBERT(b, dir)
			enc, err := NewEncoder(d, m)
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			tr := newBiGRUHead(b, d, s.hidden)
			defer tr.Close()
			r := rand.New(rand.NewPCG(7, 7))
			ids := make([][]int32, n)
			labels := make([]float32, n)
			tokens := 0
			for i, L := range lengths {
				ids[i] = make([]int32, L)
				for t := range ids[i] {
					ids[i][t] = int32(1000 + r.IntN(s.V-1000))
				}
				ids[i][0], ids[i][L-1] = 101, 102
				labels[i] = float32(r.IntN(2))
				tokens += L
			}
			const poolRows = 1 << 15
			pool := make([]float32, poolRows*s.hidden)
			for i := range pool {
				pool[i] = float32(r.NormFloat64())
			}
			idx := make([]int, n)
			for i := range idx {
				idx[i] = i
			}
			nTrain := n * 7 / 10
			var in nn.Input
			var y []float32
			var out [][]float32
			var encTime time.Duration
			batch := func(ex []int, recompute bool) (*nn.Input, []float32) {
				D := s.hidden
				if recompute {
					seqs := make([][]int32, len(ex))
					for k, e := range ex {
						seqs[k] = ids[e]
					}
					out = resize(out, len(ex))
					t0 := time.Now()
					if err := enc.ForwardInto(seqs, out); err != nil {
						b.Fatal(err)
					}
					encTime += time.Since(t0)
				}
				y = fillBatch(&in, y, ex, lengths, labels, D, func(k, e, t int) []float32 {
					if recompute {
						return out[k][t*D : (t+1)*D]
					}
					return pool[((e*512+t)%poolRows)*D:][:D]
				})
				return &in, y
			}
			epoch := func(recompute bool) float64 {
				start := time.Now()
				headEpoch(b, tr, idx, nTrain, lengths, data.NewSplitMix64(1234), nn.NewRNG(1),
					func(ex []int) (*nn.Input, []float32) { return batch(ex, recompute) })
				return time.Since(start).Seconds()
			}
			epoch(false) // warm: the pool's blocks, cuBLAS's kernels
			for i := 0; i < b.N; i++ {
				d.ResetPeak()
				encTime = 0
				cached := epoch(false)
				recomputed := epoch(true)
				b.ReportMetric(cached, "cached_s")
				b.ReportMetric(recomputed, "recomputed_s")
				b.ReportMetric(recomputed/cached, "x")
				b.ReportMetric(float64(tokens)/encTime.Seconds(), "enc_tok/s")
				b.ReportMetric(float64(d.PeakBytes())/(1<<20), "peak_MiB")
			}
		})
	}
}
