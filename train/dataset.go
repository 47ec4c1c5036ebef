package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/gpu"
)

// dataset is the data of a run as the training loop sees it: the split, each example's length
// and label, and a way to assemble a batch for the model.
type dataset struct {
	// classes are the label names in id order; values their numbers when they are ordinal
	// (data.ClassValues), for the mean absolute error; outputs the model's logits per example.
	classes            []string
	values             []float64
	outputs            int
	train, valid, test []int
	lengths            []int
	labels             []int
	// rng is the recipe's generator, continued from the split to draw each epoch's batches.
	rng *data.SplitMix64
	// vocab is the word vocabulary (word models); nil for the bigru.
	vocab *data.Vocab
	// featureDim is the width of the encoder features (bigru); 0 for word models.
	featureDim int

	// word models: the id sequences and the padding
	ids  [][]int32
	pad  data.PadOptions
	buf  data.Batch
	feed nn.Input

	// bigru: the encoder's features, from the cache or (FeatureCache "none") recomputed for
	// every batch
	enc *encoderSource
}

// loadDataset reads the run's data and prepares its inputs. vocabPath, when not empty, is the
// vocabulary to use (a resumed run's); otherwise it is built from the train part. gdev, when
// not nil, is the run's GPU (the bigru's encoder runs there).
func loadDataset(ctx context.Context, cfg Config, vocabPath string, extraTrain []string, gdev *gpu.Device, hooks Hooks) (*dataset, error) {
	corpus, err := readCorpus(ctx, cfg, false, hooks)
	if err != nil {
		return nil, err
	}
	if len(corpus.Train) == 0 || len(corpus.Valid) == 0 || len(corpus.Test) == 0 {
		return nil, fmt.Errorf("train: %s: the split left %d train, %d valid and %d test examples; each needs at least one",
			corpus.Source, len(corpus.Train), len(corpus.Valid), len(corpus.Test))
	}
	return prepareDataset(ctx, cfg, corpus, vocabPath, extraTrain, gdev, hooks)
}

// readCorpus reads the run's data set: split by the recipe, or, asGiven, in the parts the data
// name (data.Options.AsGiven, for evaluating on other data). A problem of the classes asked
// for (cfg.Labels, cfg.Target) with the data is a *ConfigError naming the setting.
func readCorpus(ctx context.Context, cfg Config, asGiven bool, hooks Hooks) (*data.Corpus, error) {
	o := cfg.DataOptions()
	o.AsGiven, o.Progress, o.ProgressMode = asGiven, hooks.Progress, hooks.ProgressMode
	corpus, err := data.Load(ctx, o)
	var unknown *data.UnknownLabelsError
	if asGiven && errors.As(err, &unknown) { // evaluation data, against a run's classes
		return nil, fmt.Errorf("train: %s has labels the run does not know: %s (the run's classes: %s); no figure is computed against a mismatched mapping",
			unknown.Source, quoteList(unknown.Unknown), quoteList(unknown.Classes))
	}
	if err != nil {
		return nil, labelsError(cfg, err)
	}
	for _, note := range corpus.Notes {
		fmt.Fprintln(hooks.Log, "Data:", note)
	}
	return corpus, nil
}

// labelsError turns data.Load's errors about the classes asked for into *ConfigErrors naming
// --labels or --target; other errors are wrapped as they are.
func labelsError(cfg Config, err error) error {
	var unknown *data.UnknownLabelsError
	var absent *data.AbsentLabelsError
	list := strings.Join(cfg.Labels, ",")
	switch {
	case len(cfg.Labels) > 0 && errors.As(err, &unknown):
		return &ConfigError{Field: "labels", Value: list, Problem: fmt.Sprintf("%s has labels the list lacks: %s (name every class of the data)",
			unknown.Source, quoteList(unknown.Unknown))}
	case len(cfg.Labels) > 0 && errors.As(err, &absent):
		return &ConfigError{Field: "labels", Value: list, Problem: fmt.Sprintf("%s has no example of %s (each class named needs examples to train on)",
			absent.Source, quoteList(absent.Absent))}
	case errors.Is(err, data.ErrTargetNeedsIMDB):
		return &ConfigError{Field: "target", Value: cfg.Target, Problem: err.Error()}
	}
	return fmt.Errorf("train: %w", err)
}

// quoteList quotes names and joins them with commas.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// prepareDataset turns a corpus into the model's inputs: the encoder's features (bigru), or
// the tokens' ids in the vocabulary of vocabPath (or one built from the train part), each
// review cut to cfg's token bound.
func prepareDataset(ctx context.Context, cfg Config, corpus *data.Corpus, vocabPath string, extraTrain []string, gdev *gpu.Device, hooks Hooks) (*dataset, error) {
	rng := corpus.RNG
	ds := &dataset{classes: corpus.Classes, values: data.ClassValues(corpus.Classes), outputs: Outputs(len(corpus.Classes)),
		train: corpus.Train, valid: corpus.Valid, test: corpus.Test, labels: corpus.Labels(), rng: &rng}
	if cfg.Kind == nn.KindBiGRU {
		if len(extraTrain) > 0 {
			return nil, fmt.Errorf("train: extra training texts are not supported for the bigru model")
		}
		if err := ds.loadFeatures(ctx, cfg, corpus.Texts(), gdev, hooks); err != nil {
			return nil, err
		}
		return ds, nil
	}

	// Extra unlabelled training texts (distillation's transfer set) follow the data set's own.
	texts := corpus.Texts()
	vocabTrain := ds.train
	if len(extraTrain) > 0 {
		n := len(texts)
		texts = append(texts, extraTrain...)
		ds.train = append(append([]int(nil), ds.train...), make([]int, len(extraTrain))...)
		for i := range extraTrain {
			ds.train[len(ds.train)-len(extraTrain)+i] = n + i
			ds.labels = append(ds.labels, data.NoLabel)
		}
	}

	// Word models: basic_english tokens, the vocabulary of the train part, ids.
	toks, err := data.TokenizeAll(ctx, texts, data.BasicEnglish{}, cfg.Threads)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	for i, s := range toks.Seqs {
		if len(s) == 0 {
			if i >= len(corpus.Examples) {
				return nil, fmt.Errorf("train: extra training text %d has no tokens", i-len(corpus.Examples))
			}
			return nil, fmt.Errorf("train: %s (%s): the text has no tokens", corpus.Examples[i].Name, corpus.Source)
		}
	}
	if vocabPath != "" {
		if ds.vocab, err = data.LoadVocab(vocabPath); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	} else {
		ds.vocab = data.BuildVocab(toks, vocabTrain, cfg.VocabSize)
	}
	ds.ids = toks.IDs(ds.vocab)
	maxLen := cfg.MaxTokens()
	ds.lengths = make([]int, len(ds.ids))
	cut, longest := 0, 0
	for i, s := range ds.ids {
		ds.lengths[i] = min(len(s), maxLen)
		if len(s) > maxLen {
			cut++
			longest = max(longest, len(s))
		}
	}
	if cut > 0 {
		fmt.Fprintf(hooks.Log, "Data: %s longer than %s tokens truncated to their first %s (the longest had %s; --max-len sets the bound)\n",
			plural(cut, "review"), progress.FormatCount(int64(maxLen)), progress.FormatCount(int64(maxLen)), progress.FormatCount(int64(longest)))
	}
	ds.pad = data.PadOptions{PadID: data.PAD, MaxLen: maxLen, MinLen: 1}
	if cfg.Kind == nn.KindCNN {
		ds.pad.MinLen = 5 // the widest filter (RECIPE.md: reviews shorter than 5 tokens are padded to 5)
	}
	return ds, nil
}

// checkBatchMemory refuses, before anything is allocated, a batch size whose largest batch
// would not fit: batchSize examples (or all of them, if fewer) padded to the longest example's
// length after truncation, estimated by nn.BatchBytes for mc's model in mode. budget <= 0
// means machineBatchBudget().
func (ds *dataset) checkBatchMemory(mc nn.Config, batchSize int, mode nn.Mode, budget int64) error {
	if ds.enc != nil {
		return nil // the bigru: the encoder has cut every review to its 512 word pieces
	}
	if budget <= 0 {
		if budget = machineBatchBudget(); budget <= 0 {
			return nil // unknown on this system
		}
	}
	longest := ds.pad.MinLen
	for _, n := range ds.lengths {
		longest = max(longest, n)
	}
	b := min(batchSize, len(ds.lengths))
	if need := nn.BatchBytes(mc, b, longest, mode); need > budget {
		return fmt.Errorf("train: a batch of %d reviews of %s tokens would need about %s, more than the %s a batch may take (half this machine's memory); lower --batch-size or --max-len",
			b, progress.FormatCount(int64(longest)), progress.FormatBytes(need), progress.FormatBytes(budget))
	}
	return nil
}

// vocabSize is the vocabulary's size (0 without one).
func (ds *dataset) vocabSize() int {
	if ds.vocab == nil {
		return 0
	}
	return ds.vocab.Len()
}

// sizes counts the examples of each split.
func (ds *dataset) sizes() map[string]int {
	return map[string]int{"train": len(ds.train), "valid": len(ds.valid), "test": len(ds.test)}
}

// input assembles a batch (example indices, longest first) for the model, and its labels. The
// returned values are reused by the next call.
func (ds *dataset) input(batch []int) (*nn.Input, []float32, error) {
	if ds.enc != nil {
		return ds.encoderInput(batch)
	}
	b := data.Pad(&ds.buf, ds.ids, ds.labels, batch, ds.pad)
	for i, k := range batch {
		if ds.labels[k] == data.NoLabel {
			b.Labels[i] = float32(math.NaN())
		}
	}
	ds.feed = nn.Input{Lengths: b.Lengths, T: b.T, IDs: b.IDs}
	return &ds.feed, b.Labels, nil
}

// loadGloVe initialises the word embedding from a GloVe-format file, and freezes it on request.
// A resumed run only freezes it: its checkpoint holds the embedding, so the file may be gone.
func loadGloVe(m nn.Model, cfg Config, vocab *data.Vocab, hooks Hooks, resume bool) error {
	wm, ok := m.(nn.WordModel)
	if !ok {
		return fmt.Errorf("train: the %s model has no word embedding for GloVe vectors", cfg.Kind)
	}
	emb := wm.WordEmbedding()
	if resume {
		if cfg.FreezeEmbedding {
			emb.Freeze()
		}
		return nil
	}
	rep, err := emb.LoadGloVe(cfg.GloVe, vocab.Tokens())
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(hooks.Log, "Embedding: %d of %d words found in %s (%d vectors)\n", rep.Found, rep.Found+rep.Missing, cfg.GloVe, rep.Vectors)
	if cfg.FreezeEmbedding {
		emb.Freeze()
	}
	return nil
}
