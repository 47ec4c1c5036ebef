package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sentibench/sentibench/internal/progress"
)

// NoLabel is the Label of an unlabelled example (IMDB's train/unsup).
const NoLabel = -1

// DefaultSeed is the recipe's seed (RECIPE.md, Training).
const DefaultSeed = 1234

// Example is one text with its label.
type Example struct {
	// Text is the review, as stored (valid UTF-8, never empty).
	Text string
	// Label indexes Corpus.Classes; NoLabel for an unlabelled example.
	Label int
	// Rating is IMDB's star rating, from the file name <id>_<rating>.txt (1-4 neg, 7-10 pos);
	// 0 when unknown (unlabelled reviews, own data).
	Rating int
	// Name says where the example came from: "train/pos/123_8.txt" (split/label/file, as
	// torch_ref.py's split.tsv names it), or "reviews.csv:17" (file and line).
	Name string
}

// Corpus is a data set read by Load: the examples, the label names, and the recipe's split.
//
// Examples are in the recipe's canonical order: the train part, then valid (own data only),
// then test, then the unlabelled reviews when asked for; within each part by label folder
// (byte-wise: IMDB's neg then pos, whatever the target and the classes' order), then by file
// name (byte-wise) or file order. The split's index lists point into Examples.
type Corpus struct {
	Examples []Example
	// Classes are the label names in id order: a label's id is its index ("neg" = 0, "pos" = 1
	// for IMDB). The order is Options.Labels when given, else the natural one (OrderLabels).
	Classes []string
	// Train and Valid are the recipe's split of the train part, in the order the generator
	// drew them (torch_ref.py's order[:n_train] and order[n_train:]); Test is the test part in
	// canonical order; Unsup the unlabelled reviews (when asked for), in canonical order.
	Train, Valid, Test, Unsup []int
	// RNG is the recipe's generator after the --limit samples and the split: the trainer
	// continues it to draw each epoch's batches (copy it: rng := c.RNG; BucketBatches(..., &rng)),
	// and checkpoints its State.
	RNG SplitMix64
	// Source is what was read (a path, or "sample" for the embedded sample); Format is how it
	// was read: "imdb-archive", "imdb-dir", "dir", "csv", "tsv" or "jsonl".
	Source, Format string
	// Notes say what Load decided where the data left room (e.g. a held-out test part).
	Notes []string
}

// Texts returns every example's text, in order.
func (c *Corpus) Texts() []string {
	out := make([]string, len(c.Examples))
	for i, e := range c.Examples {
		out[i] = e.Text
	}
	return out
}

// Labels returns every example's label id, in order (NoLabel for unlabelled ones).
func (c *Corpus) Labels() []int {
	out := make([]int, len(c.Examples))
	for i, e := range c.Examples {
		out[i] = e.Label
	}
	return out
}

// Options say what Load reads and how it splits it.
type Options struct {
	// Path is the data: the official IMDB archive (aclImdb_v1.tar.gz, or the labelled-only
	// aclImdb_v1_labelled.tar.gz; gzip-compressed or plain tar, read as a stream), an aclImdb
	// directory (the directory itself or its parent), "sample" (the embedded sample), a
	// folder-per-label directory (DIR/<label>/*.txt, or DIR/{train,valid,test}/<label>/*.txt),
	// or a .csv, .tsv or .jsonl file. Resolve finds it from a flag, the environment or the cache.
	Path string
	// WithUnsup also reads the 50,000 unlabelled reviews of train/unsup, from UnsupPath when
	// given, else from Path (the official archive holds them).
	WithUnsup bool
	// UnsupPath is an archive or directory holding aclImdb/train/unsup (such as
	// aclImdb_v1_unsup.tar.gz). Setting it implies WithUnsup.
	UnsupPath string
	// Limit, when positive, keeps a seeded sample of Limit examples of each folder (train/neg,
	// train/pos, test/neg, test/pos; for own data each part and label), drawn with the recipe's
	// generator before the split, exactly as torch_ref.py's --limit does. The unlabelled
	// reviews are sampled with a generator of their own (seed XOR UnsupSeedXor), so that
	// asking for them changes nothing else.
	Limit int
	// Seed seeds the recipe's generator (DefaultSeed is the recipe's 1234).
	Seed uint64
	// AsGiven takes the parts as the data name them, without the recipe's split: Train, Valid
	// and Test are the data's own train, valid and test parts (IMDB's folders, or the split
	// column of own data; rows without one are in the train part), in canonical order, and
	// any of them may be empty. For evaluating a model on data it was not trained on.
	AsGiven bool
	// Fields names the columns (CSV, TSV) or fields (JSONL) of own data; empty names take the
	// defaults "text", "label" and "split".
	Fields Fields
	// Labels, when set, are the classes in id order (--labels; a trained run's classes when it
	// is evaluated on other data): every label of the data must be one of them (an
	// *UnknownLabelsError lists the others), each named once, and, unless AsGiven, each must
	// label an example (an *AbsentLabelsError otherwise): evaluation data need not hold every
	// class. Empty: the natural order (see OrderLabels).
	Labels []string
	// Target is what the reviews of IMDB data are labelled with: TargetSentiment (or ""),
	// neg/pos by folder; TargetRating, the star rating of the file name; TargetRating4, four
	// levels of it. The examples, their order and the split are the same for every target.
	// Other data carry their own labels: a rating target is an error for them, unless AsGiven
	// (their labels are then taken as they are).
	Target string
	// Workers is how many goroutines read directories (default: GOMAXPROCS).
	Workers int
	// Progress, when not nil, receives progress reports; ProgressMode picks their form.
	Progress     io.Writer
	ProgressMode progress.Mode
}

// UnsupSeedXor derives the seed of the generator that samples the unlabelled reviews under
// Options.Limit ("unsup" in ASCII).
const UnsupSeedXor = 0x756e73757000

// folder is a group of examples that share a part and a label: an IMDB folder such as
// train/pos, or the rows of own data with one part and one label.
type folder struct {
	part  string // "train", "valid", "test", "unsup"
	label string // label name; "" for unsup
	items []item
}

type item struct {
	name   string // Example.Name
	text   string
	rating int
	// label, when not empty, is the item's own label (a target other than the folder's, see
	// applyTarget) instead of the folder's.
	label string
}

// labelOf is an item's label: its own, or its folder's.
func (f *folder) labelOf(it item) string {
	if it.label != "" {
		return it.label
	}
	return f.label
}

// partRank orders the parts canonically: train, valid, test, unsup.
func partRank(part string) int {
	switch part {
	case "train":
		return 0
	case "valid":
		return 1
	case "test":
		return 2
	}
	return 3
}

// Load reads a data set and applies the recipe: the --limit samples, then the train/valid split
// (the first round(0.7 n) of the shuffled train part are train, the rest valid), with one
// SplitMix64(Seed) generator whose state after the split is Corpus.RNG.
//
// Own data and directories without the IMDB layout may lack a test or valid part. Without a
// test part, a seeded 20% of the train part (round(0.2 n), drawn with the same generator before
// the train/valid split) is held out as test, in canonical order. With a valid part given, the
// train part is not split. Corpus.Notes says which of these happened. Options.AsGiven skips
// the split and keeps the parts as the data name them.
func Load(ctx context.Context, o Options) (*Corpus, error) {
	if o.Path == "" {
		return nil, errors.New("no data given: a path to the IMDB archive, an aclImdb directory, a CSV/TSV/JSONL file, a folder-per-label directory, or \"sample\"")
	}
	if o.Limit < 0 {
		return nil, fmt.Errorf("limit %d: must be positive (or 0 for no limit)", o.Limit)
	}
	if o.UnsupPath != "" {
		o.WithUnsup = true
	}
	o.Fields = o.Fields.withDefaults()
	src, err := readSource(ctx, o)
	if err != nil {
		return nil, err
	}
	return assemble(src, o)
}

// source is what a reader found.
type source struct {
	name    string
	format  string
	folders []folder
	// imdb marks the IMDB layout: its four folders are required and it always has test.
	imdb bool
}

// readSource dispatches on the kind of Path, and adds the unlabelled reviews when asked.
func readSource(ctx context.Context, o Options) (*source, error) {
	var src *source
	var err error
	wantUnsupHere := o.WithUnsup && o.UnsupPath == ""
	switch {
	case o.Path == SampleName:
		src, err = readIMDBReader(ctx, sampleReader(), SampleName, int64(len(sampleArchive)), wantUnsupHere, o)
	default:
		src, err = readPath(ctx, o.Path, wantUnsupHere, o)
	}
	if err != nil {
		return nil, err
	}
	if o.UnsupPath != "" {
		u, err := readUnsupPath(ctx, o.UnsupPath, o)
		if err != nil {
			return nil, err
		}
		src.folders = append(src.folders, u)
	}
	if o.WithUnsup {
		n := 0
		for _, f := range src.folders {
			if f.part == "unsup" {
				n += len(f.items)
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no unlabelled reviews (train/unsup/*.txt); give the archive that holds them (e.g. aclImdb_v1_unsup.tar.gz) as the unsup path", src.name)
		}
	}
	return src, nil
}

// assemble applies the target and the limit, orders the classes and the examples, and splits
// them.
func assemble(src *source, o Options) (*Corpus, error) {
	rng := NewSplitMix64(o.Seed)
	unsupRNG := NewSplitMix64(o.Seed ^ UnsupSeedXor)
	c := &Corpus{Source: src.name, Format: src.format}
	src, err := applyTarget(src, o.Target, o.AsGiven)
	if err != nil {
		return nil, err
	}

	// Canonical order: part, then the folder's label (byte-wise, whatever the classes' order,
	// so that naming the classes' order changes no example's place); the readers keep each
	// folder's own order. The --limit samples are drawn folder by folder in this order.
	folders := slices.Clone(src.folders)
	slices.SortStableFunc(folders, func(a, b folder) int {
		if d := partRank(a.part) - partRank(b.part); d != 0 {
			return d
		}
		return strings.Compare(a.label, b.label)
	})
	for k, f := range folders {
		if o.Limit > 0 && o.Limit < len(f.items) {
			r := rng
			if f.part == "unsup" {
				r = unsupRNG
			}
			keep := sample(r, len(f.items), o.Limit)
			picked := make([]item, len(keep))
			for i, j := range keep {
				picked[i] = f.items[j]
			}
			folders[k].items = picked
		}
	}

	// The classes: the distinct labels of the labelled examples, in the order OrderLabels
	// gives them.
	var found []string
	seen := map[string]bool{}
	for _, f := range folders {
		if f.part == "unsup" {
			continue
		}
		for _, it := range f.items {
			if l := f.labelOf(it); !seen[l] {
				seen[l] = true
				found = append(found, l)
			}
		}
	}
	if c.Classes, err = OrderLabels(src.name, found, o.Labels, o.AsGiven); err != nil {
		return nil, err
	}
	ids := make(map[string]int, len(c.Classes))
	for i, name := range c.Classes {
		ids[name] = i
	}
	var trainPart, validPart []int
	for _, f := range folders {
		for _, it := range f.items {
			label := NoLabel
			if f.part != "unsup" {
				label = ids[f.labelOf(it)]
			}
			i := len(c.Examples)
			c.Examples = append(c.Examples, Example{Text: it.text, Label: label, Rating: it.rating, Name: it.name})
			switch f.part {
			case "train":
				trainPart = append(trainPart, i)
			case "valid":
				validPart = append(validPart, i)
			case "test":
				c.Test = append(c.Test, i)
			case "unsup":
				c.Unsup = append(c.Unsup, i)
			}
		}
	}
	if o.AsGiven {
		if len(trainPart)+len(validPart)+len(c.Test) == 0 {
			return nil, fmt.Errorf("%s: no labelled examples", src.name)
		}
		c.Train, c.Valid, c.RNG = trainPart, validPart, *rng
		return c, nil
	}
	if len(trainPart) == 0 {
		return nil, fmt.Errorf("%s: no training examples", src.name)
	}
	if len(c.Test) == 0 {
		if src.imdb {
			return nil, fmt.Errorf("%s: no test reviews", src.name)
		}
		order := slices.Clone(trainPart)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		nTest := (2*len(order) + 5) / 10
		c.Test = slices.Sorted(slices.Values(order[:nTest]))
		trainPart = slices.Sorted(slices.Values(order[nTest:]))
		c.Notes = append(c.Notes, fmt.Sprintf("no test part given: held out a seeded 20%% of the training examples as test (%d of %d)", nTest, len(order)))
	}
	if len(validPart) == 0 {
		order := slices.Clone(trainPart)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		nTrain := (7*len(order) + 5) / 10 // round(0.7 n): 17,500 of 25,000
		c.Train, c.Valid = order[:nTrain], order[nTrain:]
	} else {
		c.Train, c.Valid = trainPart, validPart
		c.Notes = append(c.Notes, "valid part given: the train part is not split")
	}
	c.RNG = *rng
	return c, nil
}

// sample returns k distinct indices of [0, n), sorted: the first k of a shuffled [0, n), as
// torch_ref.py's SplitMix64.sample followed by sorted().
func sample(rng *SplitMix64, n, k int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	rng.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	keep := idx[:k]
	slices.Sort(keep)
	return keep
}
