package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/nn"
)

// LevelsResult is what EvaluateLevels measured.
type LevelsResult struct {
	// Metrics are the test split's, the levels as classes (Loss is NaN: there is no K-class loss
	// of a binary model).
	Metrics Metrics
	// Classes are the target's classes (the levels), lowest first.
	Classes []string
	// Cuts are the K-1 positive-class probabilities between the levels: a review whose
	// probability is at least Cuts[k-1] and below Cuts[k] gets level k.
	Cuts []float64
}

// EvaluateLevels measures a binary sentiment run against an ordinal target of its data set (IMDB's
// "rating" or "rating4", data.Options.Target): the run's probability of its positive class is
// cut into the target's K levels, the way the seed application turned it into six sentiment
// labels, and the levels are scored like a K-class model's predictions. The K-1 cut points are
// chosen on the valid split alone, so that each level gets the share of the valid reviews that
// the target gives it (the probabilities' quantiles); the test split is then scored with them.
// This is the baseline a K-class model trained on the target must beat.
func EvaluateLevels(ctx context.Context, dir, target string, o EvalOptions) (LevelsResult, error) {
	p, err := Load(dir, o.LoadOptions)
	if err != nil {
		return LevelsResult{}, err
	}
	if k := p.Info.Model.Outputs; k != 1 {
		return LevelsResult{}, &ConfigError{Field: "levels", Value: target,
			Problem: fmt.Sprintf("%s is a run of %d classes; cutting a probability into levels needs a binary run", dir, len(p.Info.Labels))}
	}
	cfg := p.Info.Config
	cfg.Threads = o.Threads
	cfg.Target, cfg.Labels = target, nil
	hooks := Hooks{Log: o.Log, Progress: io.Discard}
	if hooks.Log == nil {
		hooks.Log = io.Discard
	}
	ds, err := loadDataset(ctx, cfg, filepath.Join(dir, VocabFile), nil, nil, hooks)
	if err != nil {
		return LevelsResult{}, err
	}
	K := len(ds.classes)
	if ds.values == nil || K < 3 {
		return LevelsResult{}, &ConfigError{Field: "levels", Value: target,
			Problem: fmt.Sprintf("its classes %s are not ordinal levels (want a target such as rating or rating4)", quoteList(ds.classes))}
	}
	bs := o.BatchSize
	if bs <= 0 {
		bs = cfg.BatchSize
	}
	if err := ds.checkBatchMemory(p.Info.Model, bs, nn.Eval, p.budget); err != nil {
		return LevelsResult{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	eng := &cpuEngine{m: p.model, runner: &p.runner}
	valid, err := positiveProbabilities(eng, ds, ds.valid, bs)
	if err != nil {
		return LevelsResult{}, err
	}
	test, err := positiveProbabilities(eng, ds, ds.test, bs)
	if err != nil {
		return LevelsResult{}, err
	}
	cuts := levelCuts(valid, ds.labelsOf(ds.valid), K)
	tally := NewTally(K, ds.values)
	for i, k := range ds.test {
		tally.Add(0, ds.labels[k], level(test[i], cuts))
	}
	m := tally.Metrics()
	m.Loss = math.NaN()
	parts := make([]string, len(cuts))
	for i, c := range cuts {
		parts[i] = fmt.Sprintf("%.4g", c)
	}
	fmt.Fprintf(hooks.Log, "Levels: the binary run's probability of %q cut into the %d classes of target %s at the valid split's shares (cut points %s), scored on the test split\n",
		p.Info.Labels[len(p.Info.Labels)-1], K, target, strings.Join(parts, ", "))
	return LevelsResult{Metrics: m, Classes: ds.classes, Cuts: cuts}, nil
}

// labelsOf returns the class ids of the examples at indices.
func (ds *dataset) labelsOf(indices []int) []int {
	out := make([]int, len(indices))
	for i, k := range indices {
		out[i] = ds.labels[k]
	}
	return out
}

// positiveProbabilities runs a binary model over the examples at indices (in evaluation batches)
// and returns each one's probability of class 1, in the order of indices.
func positiveProbabilities(eng engine, ds *dataset, indices []int, batchSize int) ([]float64, error) {
	at := make(map[int]int, len(indices))
	for i, k := range indices {
		at[k] = i
	}
	out := make([]float64, len(indices))
	loss := newLabelLoss(1)
	var probs []float64
	for _, batch := range data.EvalBatches(indices, ds.lengths, batchSize) {
		in, _, err := ds.input(batch)
		if err != nil {
			return nil, err
		}
		// The target's labels are no binary targets: the loss is computed against zeros and
		// ignored; only the logits count.
		res, err := eng.Step(in, loss.of(make([]float32, len(batch))), nn.Eval, nil)
		if err != nil {
			return nil, err
		}
		for j, k := range batch {
			probs = nn.Probabilities(probs, res.Logits[j:j+1])
			out[at[k]] = probs[1]
		}
	}
	return out, nil
}

// levelCuts chooses the K-1 cut points between K ordered levels so that the levels' shares of
// probs match the shares of labels (class ids 0..K-1): cut k is the probability at the
// quantile of the labels' cumulative share of classes below k.
func levelCuts(probs []float64, labels []int, K int) []float64 {
	sorted := slices.Clone(probs)
	slices.Sort(sorted)
	count := make([]int, K)
	for _, y := range labels {
		if y >= 0 && y < K {
			count[y]++
		}
	}
	cuts := make([]float64, K-1)
	below := 0
	for k := 1; k < K; k++ {
		below += count[k-1]
		i := min(below, len(sorted)-1)
		cuts[k-1] = sorted[max(i, 0)]
	}
	return cuts
}

// level returns the level of probability p: the number of cut points at or below it.
func level(p float64, cuts []float64) int {
	n := 0
	for _, c := range cuts {
		if p >= c {
			n++
		}
	}
	return n
}
