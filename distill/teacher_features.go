package distill

// A bigru teacher's logits from encoder feature caches: the transformer encoder is the costly
// part of such a teacher, and its output for a review never changes, so the transfer set's
// features are read from (or built into) the caches that train uses, and only the teacher's
// head runs here.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sentibench/sentibench/features"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// Where the teacher's logits come from: its model over the texts (the encoder included, for a
// bigru), or its head over the encoder features of feature caches.
const (
	sourceTexts    = "texts"
	sourceFeatures = "encoder features from the feature caches (float16)"
)

// logitSource is where the logits of a teacher come from: the features of the caches for a
// bigru teacher trained on a feature cache (the features it was trained and tested on), else
// the texts.
func logitSource(teacher train.RunInfo) string {
	if teacher.Model.Kind == nn.KindBiGRU && teacher.Config.FeatureCache != train.NoFeatureCache {
		return sourceFeatures
	}
	return sourceTexts
}

// FeatureTeacher is a Teacher that also gives the logits of a batch of encoder features
// (*train.Predictor of a bigru run is one).
type FeatureTeacher interface {
	Teacher
	LogitsOfFeatures(in *nn.Input) ([]float32, error)
}

// featurePart is a part of the transfer set whose features one cache holds: the transfer
// set's positions pos[j] are the cache's reviews idx[j].
type featurePart struct {
	name string
	r    *features.Reader
	pos  []int
	idx  []int
}

// featureLogits computes the teacher's K logits of every example of the transfer set from two
// feature caches, built with the teacher's encoder settings (train.OpenFeatures): the cache of
// the corpus's texts, which is the one the teacher was trained on when the student reads the
// teacher's data (then it is reused as it is), for the train reviews; and the cache of the
// extra texts (the unlabelled reviews, the augmented copies), built once and reused by later
// distillations with the same extras. Both builds resume where a killed run stopped.
func featureLogits(ctx context.Context, cfg Config, teacher train.RunInfo, ts *transferSet, ft FeatureTeacher, K int, hooks train.Hooks) ([]float32, error) {
	ecfg := teacher.Config
	ecfg.Threads, ecfg.BLAS = cfg.Student.Threads, cfg.Student.BLAS
	fmt.Fprintf(hooks.Log, "Teacher logits: the encoder features of the %s train reviews, from the feature cache of the corpus\n", group(ts.train))
	// The labelled examples only, as the trainer reads the corpus (the unlabelled reviews
	// follow them in ts.corpus, and are in ts.extra).
	corpus, err := train.OpenFeatures(ctx, ecfg, ts.corpus.Texts()[:ts.n], hooks)
	if err != nil {
		return nil, fmt.Errorf("distill: the teacher's features of the corpus: %w", err)
	}
	defer corpus.Close()
	parts := []featurePart{{name: "train", r: corpus, pos: make([]int, ts.train), idx: ts.index[:ts.train]}}
	for k := range ts.train {
		parts[0].pos[k] = k
	}
	if len(ts.extra) > 0 {
		if _, err := os.Stat(filepath.Join(ecfg.FeatureCache, "meta.json")); ecfg.FeatureCache != "" && err == nil {
			ecfg.FeatureCache = filepath.Dir(ecfg.FeatureCache) // the teacher named one cache: the extras' goes beside it
		}
		fmt.Fprintf(hooks.Log, "Teacher logits: the encoder features of the %s unlabelled and augmented reviews, from their feature cache\n", group(len(ts.extra)))
		extra, err := train.OpenFeatures(ctx, ecfg, ts.extra, hooks)
		if err != nil {
			return nil, fmt.Errorf("distill: the teacher's features of the unlabelled and augmented reviews: %w", err)
		}
		defer extra.Close()
		p := featurePart{name: "extra", r: extra, pos: make([]int, len(ts.extra)), idx: make([]int, len(ts.extra))}
		for j := range ts.extra {
			p.pos[j], p.idx[j] = ts.train+j, j
		}
		parts = append(parts, p)
	}

	logits := make([]float32, len(ts.index)*K)
	bar := progress.New(hooks.Progress, progress.Options{Label: "Teacher logits", Unit: "reviews",
		Total: int64(len(ts.index)), Mode: hooks.ProgressMode})
	bar.Start(0)
	defer bar.Done()
	t0 := time.Now()
	var in nn.Input
	for _, p := range parts {
		if p.r.Dim() != teacher.Model.InputDim {
			return nil, fmt.Errorf("distill: the feature cache %s has features %d wide, the teacher reads %d", p.r.Dir(), p.r.Dim(), teacher.Model.InputDim)
		}
		// Batches of reviews of about the same length, longest first, as the reader wants them.
		order := make([]int, len(p.idx))
		for j := range order {
			order[j] = j
		}
		slices.SortStableFunc(order, func(a, b int) int { return p.r.Length(p.idx[b]) - p.r.Length(p.idx[a]) })
		batch := make([]int, 0, cfg.TeacherBatch)
		for lo := 0; lo < len(order); lo += cfg.TeacherBatch {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w while computing the teacher's logits from its features; resume with --resume %s", train.ErrInterrupted, cfg.RunDir)
			}
			hi := min(lo+cfg.TeacherBatch, len(order))
			batch = batch[:0]
			for _, j := range order[lo:hi] {
				batch = append(batch, p.idx[j])
			}
			if err := p.r.BatchInto(batch, &in); err != nil {
				return nil, fmt.Errorf("distill: the teacher's features: %w", err)
			}
			out, err := ft.LogitsOfFeatures(&in)
			if err != nil {
				return nil, fmt.Errorf("distill: the teacher's logits of its features: %w", err)
			}
			if len(out) != len(batch)*K {
				return nil, fmt.Errorf("distill: the teacher gave %d logits for %d reviews of %d per review", len(out), len(batch), K)
			}
			for r, j := range order[lo:hi] {
				if err := storeLogits(logits, p.pos[j], out[r*K:(r+1)*K]); err != nil {
					return nil, err
				}
			}
			bar.Add(int64(hi - lo))
		}
	}
	fmt.Fprintf(hooks.Log, "Teacher logits: %d from the encoder features in %.1f s\n", len(ts.index), time.Since(t0).Seconds())
	return logits, nil
}
