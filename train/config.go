package train

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sentibench/sentibench/internal/atomicfile"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
)

// Config is everything that decides what a run computes. It is saved as config.json in the run
// directory; a resumed run reads it back from there.
type Config struct {
	// Model is the model kind: "lstm", "cnn" or "bigru".
	Model string `json:"model"`
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
	// Limit > 0 takes a seeded sample of Limit reviews per IMDB folder (torch_ref.py's --limit).
	Limit int `json:"limit,omitempty"`
	// MaxLen > 0 truncates every review to MaxLen tokens (the recipe does not truncate).
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
	return Config{Model: model, Dropout: DefaultDropout(model), VocabSize: 25000, Epochs: 5, LR: 1e-3, Seed: 1234, Device: "cpu"}
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

// Objective replaces what a run minimises: the recipe's binary cross-entropy over the labelled
// training examples. Distillation sets one. It changes what a run computes, so a resumed run
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
	// TrainLoss, when set, builds each training batch's loss instead of binary cross-entropy
	// on the labels. batch holds the dataset indices of the batch's examples in batch order;
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
// do not go together, out-of-range values) without touching any file.
func (c Config) Check() error {
	_, err := c.resolved()
	return err
}

// resolved fills the recipe's defaults into the model-dependent fields and checks the rest.
func (c Config) resolved() (Config, error) {
	bad := func(format string, a ...any) error { return fmt.Errorf("train: %s", fmt.Sprintf(format, a...)) }
	switch c.Model {
	case nn.KindLSTM, nn.KindCNN, nn.KindBiGRU:
	default:
		return c, bad("unknown model %q (want lstm, cnn or bigru)", c.Model)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 64
		if c.Model == nn.KindBiGRU {
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
	switch {
	case c.Data == "":
		return c, bad("no data set given")
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return c, bad("dropout %v is not in [0, 1)", c.Dropout)
	case c.Epochs < 0:
		return c, bad("%d epochs", c.Epochs)
	case c.BatchSize < 1:
		return c, bad("batch size %d", c.BatchSize)
	case !(c.LR > 0):
		return c, bad("learning rate %v must be positive", c.LR)
	case c.Patience < 0 || c.Limit < 0 || c.MaxLen < 0 || c.MaxBatches < 0 || c.VocabSize < 1:
		return c, bad("patience, limit, max length, max batches and vocabulary size must not be negative")
	case c.ClipNorm < 0:
		return c, bad("clip norm %v is negative", c.ClipNorm)
	case c.Model == nn.KindBiGRU && c.Encoder == "":
		return c, bad("the bigru model needs an encoder (a Hugging Face model directory or hub id)")
	case c.Model != nn.KindBiGRU && c.Encoder != "":
		return c, bad("an encoder is only used by the bigru model")
	case c.Pool != "" && c.Pool != nn.PoolLast && c.Pool != nn.PoolConcat:
		return c, bad("unknown pooling %q (want %s or %s)", c.Pool, nn.PoolLast, nn.PoolConcat)
	case c.Pool == nn.PoolConcat && c.Model != nn.KindBiGRU:
		return c, bad("pooling %q is for the bigru model", c.Pool)
	case c.TruncateHead < 0:
		return c, bad("head+tail truncation: head %d is negative", c.TruncateHead)
	case c.TruncateHead > 0 && c.Model != nn.KindBiGRU:
		return c, bad("head+tail truncation is for the bigru model's encoder (the word models do not truncate)")
	case len(c.EncoderLayers) > 0 && c.Model != nn.KindBiGRU:
		return c, bad("--encoder-layers is for the bigru model's encoder")
	case c.GloVe != "" && c.Model == nn.KindBiGRU:
		return c, bad("GloVe vectors are for the word models (lstm, cnn)")
	case c.FreezeEmbedding && c.GloVe == "":
		return c, bad("freezing the embedding only makes sense with pretrained vectors (GloVe)")
	}
	return c, nil
}

// modelConfig is the nn configuration of the run's model for a vocabulary (or feature width).
func (c Config) modelConfig(vocabSize, inputDim int) (nn.Config, error) {
	mc, err := nn.DefaultConfig(c.Model, vocabSize)
	if err != nil {
		return mc, err
	}
	mc.Dropout = c.Dropout
	if c.Model == nn.KindBiGRU {
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
	return info, nil
}
