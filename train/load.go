package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
)

// LoadOptions say how to load a finished (or running) run for evaluation and prediction.
type LoadOptions struct {
	// Checkpoint is "best" (default) or "last".
	Checkpoint string
	// Threads and BLAS as in Config (0 and "": all cores, OpenBLAS when present).
	Threads int
	BLAS    string
	// MaxLen, when > 0, replaces the run's bound on a review's tokens (Config.MaxLen; word
	// models).
	MaxLen int

	// batchBudget, when > 0 (set by the tests), replaces the machine's memory budget of a
	// batch (machineBatchBudget).
	batchBudget int64
}

// Predictor is a trained model loaded from a run directory, ready to classify texts. Its
// methods may be called from several goroutines; calls run one batch at a time.
type Predictor struct {
	// Info is the run's config.json.
	Info RunInfo
	// Dir is the run directory.
	Dir string

	mu      sync.Mutex
	model   nn.Model
	vocab   *data.Vocab // word models
	encoder *bert.Model // bigru
	feats   [][]float32 // bigru: the encoder's outputs, reused
	feed    nn.Input
	tok     data.Tokenizer
	runner  nn.Runner
	pad     data.PadOptions
	batch   data.Batch
	// budget is the most memory a batch may take (see machineBatchBudget; 0: unchecked).
	budget int64
	// truncated counts the texts cut to the token bound so far.
	truncated atomic.Int64
}

// Load reads a run's configuration, vocabulary and checkpoint.
func Load(dir string, o LoadOptions) (*Predictor, error) {
	info, err := ReadRunInfo(dir)
	if err != nil {
		return nil, err
	}
	name := o.Checkpoint
	if name == "" {
		name = BestDir
	}
	if name != BestDir && name != LastDir {
		return nil, fmt.Errorf("train: unknown checkpoint %q (want best or last)", name)
	}
	ck, err := openCheckpointDir(dir, name)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	cfg := info.Config
	cfg.Threads, cfg.BLAS, cfg.Device = o.Threads, o.BLAS, "cpu"
	dev, err := newDevice(cfg)
	if err != nil {
		return nil, err
	}
	p := &Predictor{Info: info, Dir: dir, tok: data.BasicEnglish{}}
	if info.Model.Kind == nn.KindBiGRU {
		encDir, err := bert.Resolve(context.Background(), cfg.Encoder, bert.ResolveOptions{})
		if err != nil {
			return nil, fmt.Errorf("train: %s: the run's encoder: %w", dir, err)
		}
		if p.encoder, err = bert.Load(encDir, dev); err != nil {
			return nil, fmt.Errorf("train: %s: the run's encoder: %w", dir, err)
		}
		if p.encoder.Hidden() != info.Model.InputDim {
			return nil, fmt.Errorf("train: %s: the encoder %s has hidden size %d, the model was trained on %d",
				dir, cfg.Encoder, p.encoder.Hidden(), info.Model.InputDim)
		}
		if err := p.encoder.CheckTruncateHead(cfg.TruncateHead); err != nil {
			return nil, fmt.Errorf("train: %s: %w", dir, err)
		}
		p.encoder.TruncateHead = cfg.TruncateHead // reviews are cut as in training
		if err := p.encoder.CheckLayers(cfg.EncoderLayers); err != nil {
			return nil, fmt.Errorf("train: %s: %w", dir, err)
		}
		p.encoder.Layers = cfg.EncoderLayers // and encoded as in training
	} else {
		if p.vocab, err = data.LoadVocab(filepath.Join(dir, VocabFile)); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if p.vocab.Len() != info.Model.VocabSize {
			return nil, fmt.Errorf("train: %s has %d words, the model %d", filepath.Join(dir, VocabFile), p.vocab.Len(), info.Model.VocabSize)
		}
	}
	if p.model, err = nn.NewModel(dev, info.Model, nn.NewRNG(0)); err != nil {
		return nil, fmt.Errorf("train: %s: %w", dir, err)
	}
	if err := nn.LoadWeights(filepath.Join(ck, WeightsFile), p.model); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if o.MaxLen < 0 {
		return nil, fmt.Errorf("train: token bound %d is negative", o.MaxLen)
	}
	if o.MaxLen > 0 {
		p.Info.Config.MaxLen = o.MaxLen
	}
	p.pad = data.PadOptions{PadID: int32(info.Model.PadID), MinLen: 1, MaxLen: p.Info.Config.MaxTokens()}
	if info.Model.Kind == nn.KindCNN {
		p.pad.MinLen = 5
	}
	if p.budget = o.batchBudget; p.budget <= 0 {
		p.budget = machineBatchBudget()
	}
	return p, nil
}

// MaxTokens is the bound on a text's tokens (word models): longer texts are truncated to their
// first MaxTokens (the run's Config.MaxLen, or LoadOptions.MaxLen).
func (p *Predictor) MaxTokens() int { return p.pad.MaxLen }

// Truncated counts the texts that Predict and Logits have truncated to MaxTokens so far.
func (p *Predictor) Truncated() int64 { return p.truncated.Load() }

// Model returns the loaded model.
func (p *Predictor) Model() nn.Model { return p.model }

// Encoder is a bigru run's frozen encoder, which Logits runs before the model; nil for a word
// model.
func (p *Predictor) Encoder() *bert.Model { return p.encoder }

// Name is the model kind ("lstm", "cnn", ...).
func (p *Predictor) Name() string { return p.Info.Model.Kind }

// Classes are the run's label names in id order (IMDB: neg, pos); a run whose config.json names
// none is a binary neg/pos run, or of K classes "0" to "K-1".
func (p *Predictor) Classes() []string { return runClasses(p.Info) }

// Predict returns, for each text, the probability of class 1 (IMDB: positive) of a binary run;
// a run of more than two classes is an error (see Probabilities). A text without a single
// token is an error naming its index.
func (p *Predictor) Predict(texts []string) ([]float64, error) {
	if k := p.Info.Model.Outputs; k != 1 {
		return nil, fmt.Errorf("train: %s is a run of %d classes; Predict gives a binary run's positive-class probability (use Probabilities)", p.Dir, k)
	}
	logits, err := p.Logits(texts)
	if err != nil {
		return nil, err
	}
	probs := make([]float64, len(logits))
	for i, z := range logits {
		probs[i] = 1 / (1 + math.Exp(-float64(z)))
	}
	return probs, nil
}

// Probabilities returns, for each text, the probability of every class, in the order of
// Classes (a binary run's [1-p, p]; see nn.Probabilities).
func (p *Predictor) Probabilities(texts []string) ([][]float64, error) {
	logits, err := p.Logits(texts)
	if err != nil {
		return nil, err
	}
	k := p.Info.Model.Outputs
	out := make([][]float64, len(texts))
	for i := range out {
		out[i] = nn.Probabilities(nil, logits[i*k:(i+1)*k])
	}
	return out, nil
}

// Logits returns each text's logits, in the order of texts: one per text for a binary run, a
// row of K (row-major) for a run of K > 2 classes.
func (p *Predictor) Logits(texts []string) ([]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	seqs := make([][]int32, len(texts))
	var toks []string
	for i, text := range texts {
		if p.encoder != nil {
			seqs[i] = p.encoder.Encode(text) // [CLS] ... [SEP]: never empty
			continue
		}
		toks = p.tok.Tokenize(text)
		if len(toks) == 0 {
			return nil, fmt.Errorf("text %d has no tokens", i)
		}
		seqs[i] = p.vocab.Encode(nil, toks)
	}
	// The models want the batch sorted by length, longest first.
	order := make([]int, len(texts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(seqs[order[a]]) > len(seqs[order[b]]) })
	labels := make([]int, len(texts))
	if p.encoder == nil {
		cut := 0
		for _, s := range seqs {
			if len(s) > p.pad.MaxLen {
				cut++
			}
		}
		p.truncated.Add(int64(cut))
		T := max(min(len(seqs[order[0]]), p.pad.MaxLen), p.pad.MinLen)
		if need := nn.BatchBytes(p.Info.Model, len(texts), T, nn.Eval); p.budget > 0 && need > p.budget {
			return nil, fmt.Errorf("a batch of %d texts of %s tokens would need about %s, more than the %s a batch may take (half this machine's memory); give fewer texts at a time or a lower token bound",
				len(texts), progress.FormatCount(int64(T)), progress.FormatBytes(need), progress.FormatBytes(p.budget))
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	var in *nn.Input
	if p.encoder != nil {
		sorted := make([][]int32, len(order))
		for r, i := range order {
			sorted[r] = seqs[i]
		}
		if cap(p.feats) < len(sorted) {
			p.feats = make([][]float32, len(sorted))
		}
		if err := p.encoder.ForwardInto(sorted, p.feats[:len(sorted)]); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		timeMajor(&p.feed, p.feats[:len(sorted)], sorted, p.encoder.Hidden())
		in = &p.feed
	} else {
		b := data.Pad(&p.batch, seqs, labels, order, p.pad)
		in = &nn.Input{Lengths: b.Lengths, T: b.T, IDs: b.IDs}
	}
	res, err := p.runner.Step(p.model, in, nil, nn.Eval, nil)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	k := p.Info.Model.Outputs
	if len(res.Logits) != len(texts)*k {
		return nil, fmt.Errorf("train: %d logits for %d texts of a model of %d outputs", len(res.Logits), len(texts), k)
	}
	out := make([]float32, len(texts)*k)
	for r, i := range order {
		copy(out[i*k:(i+1)*k], res.Logits[r*k:(r+1)*k])
	}
	return out, nil
}

// LogitsOfFeatures runs a bigru run's model over a batch of its encoder's features, as a
// feature cache gives them (features.Reader.Batch: time-major, reviews sorted longest first),
// and returns the logits in the batch's order (K per review, row-major): the logits of reviews
// whose features are cached, without running the encoder.
func (p *Predictor) LogitsOfFeatures(in *nn.Input) ([]float32, error) {
	if p.encoder == nil {
		return nil, fmt.Errorf("train: %s is a %s run: it reads words, not encoder features", p.Dir, p.Info.Model.Kind)
	}
	if in.Dim != p.encoder.Hidden() || len(in.Lengths) == 0 || len(in.Feats) != in.T*len(in.Lengths)*in.Dim {
		return nil, fmt.Errorf("train: %s: a batch of %d reviews of features %d wide and %d steps (%d values), want %d wide",
			p.Dir, len(in.Lengths), in.Dim, in.T, len(in.Feats), p.encoder.Hidden())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	res, err := p.runner.Step(p.model, in, nil, nn.Eval, nil)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if k := p.Info.Model.Outputs; len(res.Logits) != len(in.Lengths)*k {
		return nil, fmt.Errorf("train: %d logits for %d reviews of a model of %d outputs", len(res.Logits), len(in.Lengths), k)
	}
	return slices.Clone(res.Logits), nil
}

// EvalOptions say what to evaluate a run on.
type EvalOptions struct {
	LoadOptions
	// Data, when set, is another data set to evaluate on (the same formats as Config.Data).
	// It is read as given (data.Options.AsGiven): every labelled example by default, or the
	// part Split names (its split column, or IMDB's train and test folders); the run's
	// --limit does not apply.
	Data string
	// Split is "test" (the default for the run's own data: the recipe's test split), "valid",
	// "train" or "all" (the default for Data: every labelled example).
	Split string
	// BatchSize overrides the run's batch size.
	BatchSize int
	// Log, when not nil, receives a line saying how many examples were read and evaluated,
	// and one when reviews were truncated to the token bound.
	Log io.Writer
}

// Evaluate runs a trained model over a split of its data set (or of another data set) and
// returns loss, accuracy, per-class and macro precision, recall and F1, the confusion matrix
// (and the mean absolute error of ordinal classes), with the run's classes. Another data set's
// labels are mapped to the run's classes by name: a label the run does not know is an error
// listing them.
func Evaluate(ctx context.Context, dir string, o EvalOptions) (Metrics, []string, error) {
	p, err := Load(dir, o.LoadOptions)
	if err != nil {
		return Metrics{}, nil, err
	}
	cfg := p.Info.Config
	cfg.Threads = o.Threads
	if len(p.Info.Labels) > 0 { // the run's classes, by name (runs before --labels recorded them only there)
		cfg.Labels = p.Info.Labels
	}
	split := o.Split
	hooks := Hooks{Log: o.Log, Progress: io.Discard}
	if hooks.Log == nil {
		hooks.Log = io.Discard
	}
	var ds *dataset
	if o.Data == "" {
		if split == "" {
			split = "test"
		}
		ds, err = loadDataset(ctx, cfg, filepath.Join(dir, VocabFile), nil, nil, hooks)
	} else {
		if split == "" {
			split = "all"
		}
		cfg.Data, cfg.Limit = o.Data, 0
		var corpus *data.Corpus
		if corpus, err = readCorpus(ctx, cfg, true, hooks); err == nil {
			ds, err = prepareDataset(ctx, cfg, corpus, filepath.Join(dir, VocabFile), nil, nil, hooks)
		}
	}
	if err != nil {
		return Metrics{}, nil, err
	}
	var idx []int
	switch split {
	case "test":
		idx = ds.test
	case "valid":
		idx = ds.valid
	case "train":
		idx = ds.train
	case "all":
		idx = slices.Sorted(slices.Values(slices.Concat(ds.train, ds.valid, ds.test)))
	default:
		return Metrics{}, nil, fmt.Errorf("train: unknown split %q (want test, valid, train or all)", split)
	}
	read := len(ds.train) + len(ds.valid) + len(ds.test)
	if len(idx) == 0 {
		return Metrics{}, nil, fmt.Errorf("train: %s has no %s part (%d labelled examples, none marked %s); leave out --split, or give --split all, to evaluate every one",
			cfg.Data, split, read, split)
	}
	if o.Data != "" {
		fmt.Fprintf(hooks.Log, "Data: %s labelled examples read from %s; evaluating %s\n", progress.FormatCount(int64(read)), cfg.Data,
			map[bool]string{true: "all of them", false: fmt.Sprintf("its %s part (%s)", split, progress.FormatCount(int64(len(idx))))}[split == "all"])
	}
	bs := o.BatchSize
	if bs <= 0 {
		bs = cfg.BatchSize
	}
	if err := ds.checkBatchMemory(p.Info.Model, bs, nn.Eval, p.budget); err != nil {
		return Metrics{}, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m, err := evaluate(&cpuEngine{m: p.model, runner: &p.runner}, ds, idx, bs)
	return m, ds.classes, err
}
