package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/atomicfile"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
)

// Config is everything that decides what a run computes. It is saved as config.json in the run
// directory; a resumed run reads it back from there.
type Config struct {
	// Kind is the model kind: "lstm", "cnn" or "bigru".
	Kind string `json:"model"`
	// Dropout sets every dropout of the model, in [0, 1). DefaultConfig sets the recipe's for
	// the model kind (DefaultDropout: 0.5 for lstm and cnn, 0.25 for bigru).
	Dropout float64 `json:"dropout"`
	// Hidden, Layers, EmbedDim and Filters change the model's size; 0 keeps the recipe's.
	Hidden   int `json:"hidden,omitempty"`
	Layers   int `json:"layers,omitempty"`
	EmbedDim int `json:"embedding_dim,omitempty"`
	Filters  int `json:"filters,omitempty"`

	// Data is the data set: an IMDB archive or directory, "sample" for the bundled sample, a
	// CSV/TSV/JSONL file or a folder per label. Resolve "" (download or cache) before Run.
	Data string `json:"data"`
	// TextColumn and LabelColumn name the fields of a CSV/TSV/JSONL data file.
	TextColumn  string `json:"text_column,omitempty"`
	LabelColumn string `json:"label_column,omitempty"`
	// Labels, when set, are the classes in id order (--labels): every label of the data must
	// be one of them, each named once, each with examples (see data.Options.Labels). Empty:
	// the data's natural order (data.OrderLabels). RunInfo.Labels records the order used.
	Labels []string `json:"labels,omitempty"`
	// Target is what IMDB's reviews are labelled with: data.TargetSentiment ("" too: neg/pos),
	// data.TargetRating (the 8 star ratings) or data.TargetRating4 (4 levels of them).
	Target string `json:"target,omitempty"`
	// Limit > 0 takes a seeded sample of Limit reviews per IMDB folder (torch_ref.py's --limit).
	Limit int `json:"limit,omitempty"`
	// MaxLen bounds a review's tokens (word models): a longer one is truncated to its first
	// MaxLen, with a line saying how many were. 0 means DefaultMaxLen, which keeps every IMDB
	// review whole (the recipe does not truncate); Run records the bound it used, and a run
	// that recorded none (made before the bound existed) gets the default.
	MaxLen int `json:"max_len,omitempty"`
	// VocabSize is the number of most frequent words in the vocabulary (the recipe's 25,000).
	VocabSize int `json:"vocab_size"`

	// Encoder is the frozen encoder of the bigru: a Hugging Face model directory or hub id.
	Encoder string `json:"encoder,omitempty"`
	// FeatureCache is the directory of the encoder feature caches (bigru).
	FeatureCache string `json:"feature_cache,omitempty"`
	// TruncateHead > 0 truncates a review longer than the encoder's maximum head+tail: its
	// first TruncateHead word pieces and its last ones (bigru; see bert.Model.TruncateHead).
	// 0, the recipe, keeps the first word pieces.
	TruncateHead int `json:"truncate_head,omitempty"`
	// EncoderLayers, when set, makes the bigru's features the mean of these hidden states of
	// the encoder instead of its last (see bert.Model.Layers).
	EncoderLayers []int `json:"encoder_layers,omitempty"`
	// Pool is what the bigru's classifier reads: nn.PoolLast (or ""), the recipe's final
	// states, or nn.PoolConcat (final states, mean and max over time).
	Pool string `json:"pool,omitempty"`

	// Epochs, BatchSize (0: 64, or 128 for the bigru), LR, and Seed as the recipe.
	Epochs    int     `json:"epochs"`
	BatchSize int     `json:"batch_size"`
	LR        float64 `json:"lr"`
	Seed      uint64  `json:"seed"`
	// Patience > 0 stops after that many epochs without a better valid loss.
	Patience int `json:"patience,omitempty"`
	// ClipNorm > 0 clips the gradients' global L2 norm before each step.
	ClipNorm float64 `json:"clip_norm,omitempty"`
	// GloVe initialises the word embedding from a GloVe-format text file; FreezeEmbedding
	// keeps it fixed.
	GloVe           string `json:"glove,omitempty"`
	FreezeEmbedding bool   `json:"freeze_embedding,omitempty"`
	// MaxBatches > 0 caps the training batches of each epoch (for timing runs only).
	MaxBatches int `json:"max_batches,omitempty"`

	// LRSchedule varies the learning rate per optimiser step (an nn.ScheduleKind: constant,
	// linear, cosine, cosine-restarts or polynomial, as transformers.get_scheduler); "" is the
	// recipe's constant rate. The run's steps are Epochs times the batches of an epoch.
	LRSchedule string `json:"lr_schedule,omitempty"`
	// WarmupSteps or WarmupRatio (of the run's steps, rounded up), at most one of them, add a
	// linear warmup from 0 to LR before the schedule.
	WarmupSteps int     `json:"warmup_steps,omitempty"`
	WarmupRatio float64 `json:"warmup_ratio,omitempty"`
	// WeightDecay > 0 is AdamW's decoupled weight decay (torch.optim.AdamW's weight_decay).
	WeightDecay float64 `json:"weight_decay,omitempty"`
	// GradAccum > 1 splits each batch into that many micro-batches of about BatchSize/GradAccum
	// reviews, whose gradients add up (each weighted by its share of the batch's reviews) to
	// one optimiser step: the update of the whole batch in less memory. 0 or 1: whole batches.
	GradAccum int `json:"grad_accum,omitempty"`
	// TensorBoard is where the run's TensorBoard event files go: "" for RUN/tb, "none" for none.
	// It changes where figures are written, never what is computed.
	TensorBoard string `json:"tensorboard,omitempty"`

	// Device is "cpu" (or "cuda" in a CUDA build). Threads is the number of worker threads
	// (0: all cores). BLAS chooses the CPU BLAS (see internal/blas: "", "openblas", "gonum").
	Device  string `json:"device"`
	Threads int    `json:"threads,omitempty"`
	BLAS    string `json:"blas,omitempty"`

	// RunDir is where the run's checkpoints, vocabulary and logs go.
	RunDir string `json:"-"`
}

// DefaultConfig returns the recipe's configuration for a model kind.
func DefaultConfig(model string) Config {
	return Config{Kind: model, Dropout: DefaultDropout(model), VocabSize: 25000, Epochs: 5, LR: 1e-3, Seed: 1234, Device: "cpu"}
}

// DefaultDropout is the recipe's dropout for a model kind (0.5 for one it does not know).
func DefaultDropout(model string) float64 {
	if mc, err := nn.DefaultConfig(model, 1); err == nil {
		return mc.Dropout
	}
	return 0.5
}

// Hooks observe a run: where it reports, and how it measures. They never change what it
// computes.
type Hooks struct {
	// Meter measures each epoch (default: WallClock). The CLI plugs in package profile's.
	Meter Meter
	// Log receives the epoch lines and other messages (default: os.Stdout; io.Discard for none).
	Log io.Writer
	// Progress receives the per-batch progress bar (default: os.Stderr); ProgressMode says how
	// (bar on a terminal, plain lines otherwise, or quiet).
	Progress     io.Writer
	ProgressMode progress.Mode
	// OnEpoch, when set, is called after each epoch's checkpoint; an error stops the run.
	OnEpoch func(EpochRecord) error
}

// Objective replaces what a run minimises: the recipe's cross-entropy (binary, or softmax over
// K classes) over the labelled training examples. Distillation sets one. It changes what a run computes, so a resumed run
// must be given the same one (package distill records what it needs to rebuild it).
type Objective struct {
	// Kind names the objective ("distill"); "" for the recipe's. config.json records it, and
	// Resume refuses a run whose recorded kind is not the objective's, so that a plain resume
	// cannot continue, say, a distilled run without its teacher.
	Kind string
	// ExtraTrain adds unlabelled texts to the training part, after the data set's own
	// examples: their dataset indices are N, N+1, ... for a data set of N examples, and their
	// label is data.NoLabel. They do not enter the vocabulary.
	ExtraTrain []string
	// TrainLoss, when set, builds each training batch's loss instead of the cross-entropy on
	// the labels. batch holds the dataset indices of the batch's examples in batch order;
	// labels their labels (NaN for data.NoLabel).
	TrainLoss func(batch []int, labels []float32) (nn.Loss, error)
}

// ResumeOptions are what Resume may change in a run it continues.
type ResumeOptions struct {
	// Threads, when > 0, sets the worker threads of the resumed run, which otherwise keeps the
	// run's own. It changes the speed only: on the CPU the figures are the same, bit for bit,
	// whatever the threads.
	Threads int
	// Retest makes Resume of a finished run test its best checkpoint again and replace the
	// final record (only once the new one is complete). Without it, Resume of a finished run
	// changes nothing and returns what its run log records.
	Retest bool
}

// WithDefaults returns the hooks with the defaults filled in where they are unset: the
// WallClock meter, the log on os.Stdout, the progress on os.Stderr.
func (h Hooks) WithDefaults() Hooks {
	h.fill()
	return h
}

func (h *Hooks) fill() {
	if h.Meter == nil {
		h.Meter = &WallClock{}
	}
	if h.Log == nil {
		h.Log = os.Stdout
	}
	if h.Progress == nil {
		h.Progress = os.Stderr
	}
}

// Check reports what Run would refuse in the configuration itself (unknown model, options that
// do not go together, out-of-range values) without touching any file. The error is a
// *ConfigError naming the field.
func (c Config) Check() error {
	_, err := c.resolved()
	return err
}

// ConfigError is a Config value that Run refuses: Field is its name in config.json, Value the
// value given, and Problem says what is wrong with it (or what it needs).
type ConfigError struct {
	Field   string
	Value   any
	Problem string
	// Package names the package whose configuration it is, for the message ("train" when empty;
	// distill's own settings say "distill").
	Package string
}

func (e *ConfigError) Error() string {
	pkg := e.Package
	if pkg == "" {
		pkg = "train"
	}
	return fmt.Sprintf("%s: %s: %s", pkg, e.Setting(), e.Problem)
}

// Setting names the field and its value: "dropout 1.5", "encoder" for an empty one.
func (e *ConfigError) Setting() string {
	switch v := e.Value.(type) {
	case nil, bool:
		return e.Field
	case string:
		if v == "" {
			return e.Field
		}
	}
	return fmt.Sprintf("%s %v", e.Field, e.Value)
}

// resolved fills the recipe's defaults into the model-dependent fields and checks the rest.
func (c Config) resolved() (Config, error) {
	bad := func(field string, value any, problem string) error {
		return &ConfigError{Field: field, Value: value, Problem: problem}
	}
	switch c.Kind {
	case nn.KindLSTM, nn.KindCNN, nn.KindBiGRU:
	default:
		return c, bad("model", c.Kind, "want lstm, cnn or bigru")
	}
	if c.BatchSize == 0 {
		c.BatchSize = 64
		if c.Kind == nn.KindBiGRU {
			c.BatchSize = 128
		}
	}
	if c.VocabSize == 0 {
		c.VocabSize = 25000
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Device == "" {
		c.Device = "cpu"
	}
	if c.MaxLen == 0 && c.Kind != nn.KindBiGRU {
		c.MaxLen = DefaultMaxLen
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	_, _, deviceErr := gpuOrdinal(c.Device)
	switch {
	case c.Data == "":
		return c, bad("data", "", "no data set given")
	case !(c.Dropout >= 0 && c.Dropout < 1): // NaN too
		return c, bad("dropout", c.Dropout, "want a probability in [0, 1)")
	case c.Epochs < 0:
		return c, bad("epochs", c.Epochs, "want a positive number")
	case c.BatchSize < 1:
		return c, bad("batch_size", c.BatchSize, "want a positive number")
	case !(c.LR > 0) || !finite(c.LR):
		return c, bad("lr", c.LR, "want a positive, finite learning rate")
	case c.VocabSize < 1:
		return c, bad("vocab_size", c.VocabSize, "want a positive number")
	case c.Patience < 0:
		return c, bad("patience", c.Patience, "want 0 (never stop early) or a positive number")
	case c.Limit < 0:
		return c, bad("limit", c.Limit, "want 0 (all reviews) or a positive number")
	case c.MaxLen < 0:
		return c, bad("max_len", c.MaxLen, "want a positive number of tokens per review")
	case c.MaxBatches < 0:
		return c, bad("max_batches", c.MaxBatches, "want 0 (all batches) or a positive number")
	case c.Hidden < 0 || c.Layers < 0 || c.EmbedDim < 0 || c.Filters < 0 || c.Threads < 0:
		return c, negativeSize(c)
	case c.ClipNorm < 0 || !finite(c.ClipNorm):
		return c, bad("clip_norm", c.ClipNorm, "want 0 (no clipping) or a positive, finite norm")
	case deviceErr != nil:
		return c, bad("device", c.Device, "want cpu, cuda or cuda:N")
	case c.Kind == nn.KindBiGRU && c.Encoder == "":
		return c, bad("encoder", "", "the bigru model needs an encoder (a Hugging Face model directory or hub id)")
	case c.Kind != nn.KindBiGRU && c.Encoder != "":
		return c, bad("encoder", c.Encoder, "an encoder is only used by the bigru model")
	case c.Pool != "" && c.Pool != nn.PoolLast && c.Pool != nn.PoolConcat:
		return c, bad("pool", c.Pool, fmt.Sprintf("unknown pooling (want %s or %s)", nn.PoolLast, nn.PoolConcat))
	case c.Pool == nn.PoolConcat && c.Kind != nn.KindBiGRU:
		return c, bad("pool", c.Pool, "is for the bigru model")
	case c.MaxLen > 0 && c.Kind == nn.KindBiGRU:
		return c, bad("max_len", c.MaxLen, "a token bound is for the word models; the bigru's encoder cuts each review to its 512 word pieces (see --truncate-head)")
	case c.TruncateHead < 0:
		return c, bad("truncate_head", c.TruncateHead, "a negative head: want 0 (the first word pieces) or a positive number")
	case c.TruncateHead > 0 && c.Kind != nn.KindBiGRU:
		return c, bad("truncate_head", c.TruncateHead, "head+tail truncation is for the bigru model's encoder (the word models do not truncate)")
	case len(c.EncoderLayers) > 0 && c.Kind != nn.KindBiGRU:
		return c, bad("encoder_layers", c.EncoderLayers, "is for the bigru model's encoder")
	case c.GloVe != "" && c.Kind == nn.KindBiGRU:
		return c, bad("glove", c.GloVe, "GloVe vectors are for the word models (lstm, cnn)")
	case c.FreezeEmbedding && c.GloVe == "":
		return c, bad("freeze_embedding", true, "freezing the embedding only makes sense with pretrained vectors (GloVe)")
	case c.Target != "" && !slices.Contains(data.Targets(), c.Target):
		return c, bad("target", c.Target, "unknown target (want "+orWords(data.Targets())+")")
	}
	if len(c.Labels) > 0 {
		if err := data.CheckLabelList(c.Labels); err != nil {
			return c, bad("labels", strings.Join(c.Labels, ","), err.Error())
		}
	}
	return c, c.checkOptimiser()
}

// checkOptimiser checks the learning-rate schedule, weight decay and gradient accumulation.
func (c Config) checkOptimiser() error {
	bad := func(field string, value any, problem string) error {
		return &ConfigError{Field: field, Value: value, Problem: problem}
	}
	kinds := make([]string, 0, 5)
	known := c.LRSchedule == ""
	for _, k := range nn.ScheduleKinds() {
		kinds = append(kinds, string(k))
		known = known || string(k) == c.LRSchedule
	}
	_, onGPU, _ := gpuOrdinal(c.Device)
	switch {
	case !known:
		return bad("lr_schedule", c.LRSchedule, "unknown learning-rate schedule (want "+orWords(kinds)+")")
	case c.WarmupSteps < 0:
		return bad("warmup_steps", c.WarmupSteps, "want 0 (no warmup) or a positive number of optimiser steps")
	case !(c.WarmupRatio >= 0 && c.WarmupRatio <= 1):
		return bad("warmup_ratio", c.WarmupRatio, "want a fraction of the run's optimiser steps in [0, 1]")
	case c.WarmupSteps > 0 && c.WarmupRatio > 0:
		return bad("warmup_ratio", c.WarmupRatio, fmt.Sprintf("give warmup steps (%d) or a warmup ratio, not both", c.WarmupSteps))
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return bad("weight_decay", c.WeightDecay, "want 0 (no decay) or a positive, finite decoupled weight decay")
	case c.GradAccum < 0:
		return bad("grad_accum", c.GradAccum, "want a positive number of micro-batches per batch")
	case c.GradAccum > c.BatchSize:
		return bad("grad_accum", c.GradAccum, fmt.Sprintf("more micro-batches than the batch size %d (each needs a review at least)", c.BatchSize))
	case onGPU && c.LRSchedule != "" && c.LRSchedule != string(nn.ScheduleConstant):
		return bad("lr_schedule", c.LRSchedule, "learning-rate schedules run on the CPU only (the GPU trainer has a constant rate)")
	case onGPU && (c.WarmupSteps > 0 || c.WarmupRatio > 0):
		field, value := "warmup_steps", any(c.WarmupSteps)
		if c.WarmupRatio > 0 {
			field, value = "warmup_ratio", c.WarmupRatio
		}
		return bad(field, value, "a warmup runs on the CPU only (the GPU trainer has a constant rate)")
	case onGPU && c.WeightDecay > 0:
		return bad("weight_decay", c.WeightDecay, "decoupled weight decay runs on the CPU only")
	case onGPU && c.GradAccum > 1:
		return bad("grad_accum", c.GradAccum, "gradient accumulation runs on the CPU only")
	}
	return nil
}

// orWords joins words as "a, b or c".
func orWords(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// batchesPerEpoch is the number of training batches of each epoch for trainExamples examples.
func (c Config) batchesPerEpoch(trainExamples int) int {
	n := (trainExamples + c.BatchSize - 1) / c.BatchSize
	if c.MaxBatches > 0 {
		n = min(n, c.MaxBatches)
	}
	return n
}

// schedule is the optimiser's learning-rate schedule for a run over trainExamples examples: the
// zero value (the recipe's constant rate, bit for bit) unless a schedule or a warmup is set.
// A warmup longer than the run is a *ConfigError.
func (c Config) schedule(trainExamples int) (nn.ScheduleConfig, error) {
	if (c.LRSchedule == "" || c.LRSchedule == string(nn.ScheduleConstant)) && c.WarmupSteps == 0 && c.WarmupRatio == 0 {
		return nn.ScheduleConfig{}, nil
	}
	perEpoch := c.batchesPerEpoch(trainExamples)
	steps := c.Epochs * perEpoch
	if c.WarmupSteps > steps {
		return nn.ScheduleConfig{}, &ConfigError{Field: "warmup_steps", Value: c.WarmupSteps,
			Problem: fmt.Sprintf("beyond the run's %d optimiser steps (%d epochs of %d batches)", steps, c.Epochs, perEpoch)}
	}
	return nn.ScheduleConfig{Kind: nn.ScheduleKind(c.LRSchedule), TrainingSteps: steps,
		WarmupSteps: c.WarmupSteps, WarmupRatio: c.WarmupRatio}, nil
}

// negativeSize names the first negative model size or thread count of c.
func negativeSize(c Config) error {
	for _, f := range []struct {
		field string
		value int
	}{{"hidden", c.Hidden}, {"layers", c.Layers}, {"embedding_dim", c.EmbedDim}, {"filters", c.Filters}, {"threads", c.Threads}} {
		if f.value < 0 {
			return &ConfigError{Field: f.field, Value: f.value, Problem: "want 0 (the default) or a positive number"}
		}
	}
	return nil
}

// DataOptions are the options of data.Load that read the run's data set as the run does
// (without the progress reports and the parts as given).
func (c Config) DataOptions() data.Options {
	return data.Options{
		Path:    c.Data,
		Limit:   c.Limit,
		Seed:    c.Seed,
		Fields:  data.Fields{Text: c.TextColumn, Label: c.LabelColumn},
		Labels:  c.Labels,
		Target:  c.Target,
		Workers: c.Threads,
	}
}

// Outputs is the number of logits of a model of the given number of classes: one for two
// classes (the recipe's binary classifier), K for K > 2.
func Outputs(classes int) int {
	if classes <= 2 {
		return 1
	}
	return classes
}

// modelConfig is the nn configuration of the run's model for a vocabulary (or feature width)
// and its number of classes.
func (c Config) modelConfig(vocabSize, inputDim, classes int) (nn.Config, error) {
	mc, err := nn.DefaultConfig(c.Kind, vocabSize)
	if err != nil {
		return mc, err
	}
	mc.Outputs = Outputs(classes)
	mc.Dropout = c.Dropout
	if c.Kind == nn.KindBiGRU {
		mc.InputDim = inputDim
		mc.Pool = c.Pool
	}
	if c.Hidden > 0 {
		mc.Hidden = c.Hidden
	}
	if c.Layers > 0 {
		mc.Layers = c.Layers
	}
	if c.EmbedDim > 0 {
		mc.EmbedDim = c.EmbedDim
	}
	if c.Filters > 0 {
		mc.Filters = c.Filters
	}
	return mc, mc.Validate()
}

// ConfigFile is the name of the run configuration inside a run directory.
const ConfigFile = "config.json"

// RunInfo is config.json: the run's configuration, the model's, and what the data turned out
// to be.
type RunInfo struct {
	Config Config    `json:"config"`
	Model  nn.Config `json:"model"`
	// Labels names the classes by id (IMDB: neg, pos).
	Labels []string `json:"labels"`
	// Sizes counts the examples of each split.
	Sizes map[string]int `json:"sizes"`
	// Params is the number of trainable parameters.
	Params  int    `json:"params"`
	Version string `json:"version"`
	// Kind is Hooks.Kind of the run that wrote it ("distill"); empty for a plain run.
	Kind string `json:"kind,omitempty"`
}

func writeRunInfo(dir string, info RunInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, ConfigFile), append(b, '\n'))
}

// ReadRunInfo reads a run directory's config.json.
func ReadRunInfo(dir string) (RunInfo, error) {
	var info RunInfo
	p := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) {
			return info, fmt.Errorf("train: %s is not a run directory (no %s)", dir, ConfigFile)
		}
		return info, fmt.Errorf("train: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("train: %s: %w", p, err)
	}
	if err := info.Model.Validate(); err != nil {
		return info, fmt.Errorf("train: %s: %w", p, err)
	}
	if n := len(info.Labels); n > 0 && Outputs(n) != info.Model.Outputs {
		return info, fmt.Errorf("train: %s: %d labels for a model of %d outputs (want %d)", p, n, info.Model.Outputs, Outputs(n))
	}
	return info, nil
}
