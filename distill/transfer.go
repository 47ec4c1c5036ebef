package distill

// The transfer set: the texts the teacher labels and the student learns from. It is the
// corpus's train part, optionally followed by unlabelled reviews (IMDB's train/unsup) and by
// augmented copies of the train reviews (Tang et al. 2019). Everything in it follows from the
// configuration and the seed, so a resumed run rebuilds the same set.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/train"
)

// Augment configures Tang et al.'s (2019) data augmentation of the train reviews: for each
// review, Copies copies in which every token is replaced by <unk> with probability MaskProb,
// and which, with probability NgramProb, keep only a random n-gram of the review (n uniform in
// 1..NgramMax tokens). The augmented copies are unlabelled: the teacher's logits alone teach
// them. (Tang et al. also swap words for others of the same part of speech; that needs a
// tagger, and is left out.)
type Augment struct {
	// Copies is how many augmented copies of each train review join the transfer set (0: none).
	Copies int `json:"copies"`
	// MaskProb is each token's probability to become <unk> (Tang et al.: 0.1).
	MaskProb float64 `json:"mask_prob"`
	// NgramProb is the probability that a copy keeps only an n-gram (Tang et al.: 0.25).
	NgramProb float64 `json:"ngram_prob"`
	// NgramMax is the longest n-gram in tokens (Tang et al.: 5, for sentences); 0 allows up to
	// the whole review.
	NgramMax int `json:"ngram_max"`
}

// DefaultAugment is Tang et al.'s masking and n-gram probabilities, with n-grams up to the whole
// review (IMDB reviews are long: a 5-gram of one says little), and no copies.
func DefaultAugment() Augment { return Augment{MaskProb: 0.1, NgramProb: 0.25} }

func (a Augment) check() error {
	switch {
	case a.Copies < 0:
		return fmt.Errorf("distill: %d augmented copies", a.Copies)
	case !(a.MaskProb >= 0 && a.MaskProb <= 1):
		return fmt.Errorf("distill: mask probability %v is outside [0, 1]", a.MaskProb)
	case !(a.NgramProb >= 0 && a.NgramProb <= 1):
		return fmt.Errorf("distill: n-gram probability %v is outside [0, 1]", a.NgramProb)
	case a.NgramMax < 0:
		return fmt.Errorf("distill: longest n-gram %d is negative", a.NgramMax)
	case a.Copies > 0 && a.MaskProb == 0 && a.NgramProb == 0:
		return fmt.Errorf("distill: augmented copies with neither masking nor n-gram sampling would repeat the reviews unchanged")
	}
	return nil
}

// Seeds of the transfer set's own generators, derived from the run's seed so that they leave
// the recipe's generator (split, batches) alone.
const (
	unsupSeedXor   = 0x64697374_756e73 // "distuns"
	augmentSeedXor = 0x64697374_617567 // "distaug"
)

// transferSet is what the teacher labels: the dataset indices of its examples as the trainer
// numbers them (the corpus's labelled examples 0..n-1, then the extra texts n, n+1, ...), and
// their texts, in that order.
type transferSet struct {
	// n is the number of labelled examples of the corpus (the trainer's dataset size).
	n int
	// index and texts: the train part (in the corpus's order), then the extras.
	index []int
	texts []string
	// extra are the unlabelled texts added to the trainer's training part (train.Objective.ExtraTrain):
	// the unlabelled reviews, then the augmented copies.
	extra []string
	// counts of each kind
	train, unsup, augmented int
	// corpus is the student's data set (the report tests on its test part).
	corpus *data.Corpus
}

// buildTransfer reads the student's data set (with the unlabelled reviews when asked) and
// assembles the transfer set.
func buildTransfer(ctx context.Context, cfg Config, hooks train.Hooks) (*transferSet, error) {
	opts := cfg.Student.DataOptions() // as the student's trainer reads it: labels, target
	opts.UnsupPath = cfg.Unsup
	opts.Progress, opts.ProgressMode = hooks.Progress, hooks.ProgressMode
	corpus, err := data.Load(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	// The unlabelled reviews come last in the corpus, so the labelled examples keep the
	// indices the trainer gives them (it reads the corpus without them).
	n := len(corpus.Examples) - len(corpus.Unsup)
	for k, i := range corpus.Unsup {
		if i != n+k {
			return nil, fmt.Errorf("distill: %s: the unlabelled reviews do not follow the labelled ones", corpus.Source)
		}
	}
	ts := &transferSet{n: n, corpus: corpus, train: len(corpus.Train)}
	for _, i := range corpus.Train {
		ts.index = append(ts.index, i)
		ts.texts = append(ts.texts, corpus.Examples[i].Text)
	}

	unsup := corpus.Unsup
	if cfg.UnsupLimit > 0 && cfg.UnsupLimit < len(unsup) {
		unsup = seededSample(unsup, cfg.UnsupLimit, cfg.Student.Seed^unsupSeedXor)
	}
	for _, i := range unsup {
		ts.extra = append(ts.extra, corpus.Examples[i].Text)
	}
	ts.unsup = len(unsup)

	if cfg.Augment.Copies > 0 {
		aug, err := augmentTexts(ctx, corpus, cfg.Augment, cfg.Student.Seed)
		if err != nil {
			return nil, err
		}
		ts.extra = append(ts.extra, aug...)
		ts.augmented = len(aug)
	}
	for k, text := range ts.extra {
		ts.index = append(ts.index, n+k)
		ts.texts = append(ts.texts, text)
	}
	corpus.Unsup = nil // the texts are in ts.extra; the report needs the labelled part only
	return ts, nil
}

// seededSample returns k of items, drawn with a SplitMix64(seed) shuffle, in their order.
func seededSample(items []int, k int, seed uint64) []int {
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	rng := data.NewSplitMix64(seed)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	keep := order[:k]
	slices.Sort(keep)
	out := make([]int, k)
	for i, o := range keep {
		out[i] = items[o]
	}
	return out
}

// augmentTexts makes the augmented copies of the corpus's train reviews: Copies of each, in
// the train part's order, copy by copy.
func augmentTexts(ctx context.Context, corpus *data.Corpus, a Augment, seed uint64) ([]string, error) {
	out := make([]string, 0, len(corpus.Train)*a.Copies)
	tok := data.BasicEnglish{}
	var toks []string
	for j, i := range corpus.Train {
		if j%1024 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("distill: augmenting the train reviews: %w", ctx.Err())
		}
		toks = tok.AppendTokens(toks[:0], corpus.Examples[i].Text)
		for c := 0; c < a.Copies; c++ {
			// Each copy has a generator of its own, so that it depends on nothing but the
			// seed, the review's place in the train part and the copy's number.
			rng := data.NewSplitMix64(mix64(seed ^ augmentSeedXor ^ mix64(uint64(j)<<16|uint64(c))))
			out = append(out, augmentOne(toks, a, rng))
		}
	}
	return out, nil
}

// augmentOne returns one augmented copy of a review's tokens, joined by spaces (which the
// tokenizer splits back into the same tokens).
func augmentOne(toks []string, a Augment, rng *data.SplitMix64) string {
	cp := slices.Clone(toks)
	for i := range cp {
		if uniform(rng) < a.MaskProb {
			cp[i] = data.UnkToken
		}
	}
	if len(cp) > 1 && uniform(rng) < a.NgramProb {
		maxN := a.NgramMax
		if maxN <= 0 || maxN > len(cp) {
			maxN = len(cp)
		}
		n := 1 + int(rng.Next()%uint64(maxN))
		start := int(rng.Next() % uint64(len(cp)-n+1))
		cp = cp[start : start+n]
	}
	return strings.Join(cp, " ")
}

// uniform is a float64 in [0, 1) from the generator's next 53 bits.
func uniform(rng *data.SplitMix64) float64 { return float64(rng.Next()>>11) / (1 << 53) }

// mix64 is SplitMix64's output function: a bijective scramble of a 64-bit value.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}
