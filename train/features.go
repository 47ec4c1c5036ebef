package train

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/sentibench/sentibench/features"
	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
	"github.com/sentibench/sentibench/nn/gpu"
)

// NoFeatureCache as Config.FeatureCache makes the bigru recompute the frozen encoder for every
// batch of every epoch, as the seed did: only for measuring what the cache saves.
const NoFeatureCache = "none"

// encoderSource gives the bigru its input: the encoder's last hidden states of each review,
// read from the feature cache (features.Reader) or computed on the spot.
type encoderSource struct {
	cache *features.Reader
	// recomputing: the encoder, where it runs (the model itself on the CPU, or its copy on the
	// run's GPU) and each review's word pieces
	model *bert.Model
	fwd   features.Forwarder
	gpu   *gpu.Encoder
	ids   [][]int32
	out   [][]float32
}

// close frees the encoder's copy on the GPU, if any.
func (src *encoderSource) close() error {
	if src == nil || src.gpu == nil {
		return nil
	}
	err := src.gpu.Close()
	src.gpu = nil
	return err
}

// gpuBatchTokens is the feature cache's batch size in word pieces when the encoder runs on a GPU:
// larger batches than the CPU's default keep the device busy.
const gpuBatchTokens = 65536

// EncoderOn makes a feature cache build (features.Build with opt) run the encoder on gdev, in
// batches of up to 65,536 word pieces; with a nil gdev it leaves opt as it is (the CPU). Call the
// returned func after Build: it frees the encoder's copy on the device.
func EncoderOn(gdev *gpu.Device, opt *features.Options) (release func() error) {
	if gdev == nil {
		return func() error { return nil }
	}
	if opt.BatchTokens == 0 {
		opt.BatchTokens = gpuBatchTokens
	}
	var enc *gpu.Encoder
	opt.OnDevice = func(m *bert.Model) (features.Forwarder, error) {
		var err error
		if enc, err = gpu.NewEncoder(gdev, m); err != nil {
			return nil, fmt.Errorf("the encoder on %s: %w", gdev.Name(), err)
		}
		return enc, nil
	}
	return func() error {
		if enc == nil {
			return nil
		}
		return enc.Close()
	}
}

// loadFeatures prepares the bigru's input: builds (or reuses) the feature cache of every
// review, or loads the encoder to run it per batch. With a GPU (gdev not nil) the encoder runs
// there, for the cache's build as for the recomputed batches.
func (ds *dataset) loadFeatures(ctx context.Context, cfg Config, texts []string, gdev *gpu.Device, hooks Hooks) error {
	dir, err := bert.Resolve(ctx, cfg.Encoder, bert.ResolveOptions{Progress: hooks.Progress, ProgressMode: hooks.ProgressMode})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	impl, err := blas.Load(cfg.BLAS)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	cpu := nn.NewCPU(impl, cfg.Threads)
	src := &encoderSource{}
	if cfg.FeatureCache == NoFeatureCache {
		if src.model, err = bert.Load(dir, cpu); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if err := src.model.CheckTruncateHead(cfg.TruncateHead); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		src.model.TruncateHead = cfg.TruncateHead
		if err := src.model.CheckLayers(cfg.EncoderLayers); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		src.model.Layers = cfg.EncoderLayers
		src.fwd = src.model
		if gdev != nil {
			if src.gpu, err = gpu.NewEncoder(gdev, src.model); err != nil {
				return fmt.Errorf("train: the encoder on %s: %w", gdev.Name(), err)
			}
			src.fwd = src.gpu
			fmt.Fprintf(hooks.Log, "Encoder: recomputed for every batch on %s\n", gdev.Name())
		}
		src.ids = make([][]int32, len(texts))
		ds.lengths = make([]int, len(texts))
		for i, t := range texts {
			src.ids[i] = src.model.Encode(t)
			ds.lengths[i] = len(src.ids[i])
		}
		ds.featureDim = src.model.Hidden()
		ds.enc = src
		return nil
	}
	if src.cache, err = openFeatures(ctx, cfg, dir, impl, cpu, texts, gdev, hooks); err != nil {
		return err
	}
	fmt.Fprintf(hooks.Log, "Features: %s (%d reviews, hidden %d)\n", filepath.Base(src.cache.Dir()), src.cache.Len(), src.cache.Dim())
	ds.lengths = src.cache.Lengths()
	ds.featureDim = src.cache.Dim()
	ds.enc = src
	return nil
}

// OpenFeatures builds (or reuses) the feature cache of texts with a bigru run's encoder
// settings (cfg's Encoder, EncoderLayers, TruncateHead, and FeatureCache as the cache root or
// one cache's directory), on the CPU with cfg's BLAS and Threads, and opens it. Distillation
// reads a bigru teacher's features of its transfer set this way.
func OpenFeatures(ctx context.Context, cfg Config, texts []string, hooks Hooks) (*features.Reader, error) {
	dir, err := bert.Resolve(ctx, cfg.Encoder, bert.ResolveOptions{Progress: hooks.Progress, ProgressMode: hooks.ProgressMode})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	impl, err := blas.Load(cfg.BLAS)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return openFeatures(ctx, cfg, dir, impl, nn.NewCPU(impl, cfg.Threads), texts, nil, hooks)
}

// openFeatures is OpenFeatures with the encoder's directory resolved, the BLAS loaded and, when
// gdev is not nil, the encoder on that GPU.
func openFeatures(ctx context.Context, cfg Config, encDir string, impl blas.Impl, cpu *nn.CPU, texts []string, gdev *gpu.Device, hooks Hooks) (*features.Reader, error) {
	root := cfg.FeatureCache
	if root == "" {
		var err error
		if root, err = features.DefaultCacheDir(); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	// The encoder runs best as one goroutine per core over a one-threaded BLAS (measured in
	// nn/bert); OpenBLAS's thread count is process-wide, so it is put back for training.
	threads := impl.Threads()
	impl.SetThreads(1)
	opt := features.Options{Encoder: encDir, CPU: cpu, CacheDir: root,
		TruncateHead: cfg.TruncateHead, Layers: cfg.EncoderLayers, Progress: hooks.Progress, ProgressMode: hooks.ProgressMode}
	release := EncoderOn(gdev, &opt)
	cacheDir, err := features.Build(ctx, texts, opt)
	impl.SetThreads(threads)
	if rerr := release(); err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	r, err := features.Open(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return r, nil
}

// encoderInput assembles a bigru batch: the features of the reviews, time-major.
func (ds *dataset) encoderInput(batch []int) (*nn.Input, []float32, error) {
	ds.buf.Labels = ds.buf.Labels[:0]
	for _, i := range batch {
		ds.buf.Labels = append(ds.buf.Labels, float32(ds.labels[i]))
	}
	src := ds.enc
	if src.cache != nil {
		if err := src.cache.BatchInto(batch, &ds.feed); err != nil {
			return nil, nil, err
		}
		return &ds.feed, ds.buf.Labels, nil
	}
	seqs := make([][]int32, len(batch))
	for k, i := range batch {
		seqs[k] = src.ids[i]
	}
	if cap(src.out) < len(batch) {
		src.out = make([][]float32, len(batch))
	}
	out := src.out[:len(batch)]
	if err := src.fwd.ForwardInto(seqs, out); err != nil {
		return nil, nil, err
	}
	timeMajor(&ds.feed, out, seqs, src.model.Hidden())
	return &ds.feed, ds.buf.Labels, nil
}

// timeMajor lays per-review hidden states ([len, D] each, longest first) out as nn.Input.Feats:
// [T, B, D], zero past each review's end.
func timeMajor(in *nn.Input, out [][]float32, seqs [][]int32, D int) {
	B, T := len(seqs), len(seqs[0])
	in.T, in.Dim, in.IDs = T, D, nil
	in.Lengths = in.Lengths[:0]
	for _, s := range seqs {
		in.Lengths = append(in.Lengths, len(s))
	}
	n := T * B * D
	if cap(in.Feats) < n {
		in.Feats = make([]float32, n)
	}
	in.Feats = in.Feats[:n]
	clear(in.Feats)
	for b, h := range out {
		for t := 0; t < len(seqs[b]); t++ {
			copy(in.Feats[(t*B+b)*D:(t*B+b+1)*D], h[t*D:(t+1)*D])
		}
	}
}
