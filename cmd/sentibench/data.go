package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/atomicfile"
	"github.com/sentibench/sentibench/internal/progress"
)

// dataFlags are the flags that say which data to read; the train command shares them.
type dataFlags struct {
	path       string
	unsup      string
	withUnsup  bool
	limit      int
	seed       uint64
	fields     data.Fields
	labels     []string
	target     string
	noDownload bool
	progress   string
}

func (f *dataFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.path, "data", "", `the data: the IMDB archive (.tar.gz), an aclImdb directory, "sample" (the bundled sample), a .csv/.tsv/.jsonl file, or a folder-per-label directory (default: $SENTIBENCH_DATA, else the cached download, else download the official archive)`)
	fl.StringVar(&f.unsup, "unsup", "", "archive or directory holding aclImdb/train/unsup (the unlabelled reviews), e.g. aclImdb_v1_unsup.tar.gz")
	fl.BoolVar(&f.withUnsup, "with-unsup", false, "also read the unlabelled reviews (from --unsup, else from the data archive)")
	fl.IntVar(&f.limit, "limit", 0, "keep a seeded sample of N reviews per folder (as torch_ref.py --limit); 0 keeps all")
	fl.Uint64Var(&f.seed, "seed", data.DefaultSeed, "seed of the recipe's generator (split and batches)")
	fl.StringVar(&f.fields.Text, "text-field", "text", "own data: the text column (CSV/TSV) or field (JSONL)")
	fl.StringVar(&f.fields.Label, "label-field", "label", "own data: the label column or field")
	fl.StringVar(&f.fields.Split, "split-field", "split", "own data: the optional split column or field (values train, valid, test)")
	fl.StringSliceVar(&f.labels, "labels", nil, "the classes in id order, comma-separated (default: numbers numerically, else byte-wise, a binary data set's positive class second)")
	fl.StringVar(&f.target, "target", "", "IMDB: what the reviews are labelled with: sentiment (neg, pos), rating (the 8 star ratings) or rating4 (1-2, 3-4, 7-8, 9-10)")
	fl.BoolVar(&f.noDownload, "no-download", false, "fail instead of downloading the official archive when no local copy is found")
	fl.StringVar(&f.progress, "progress", "auto", "progress reports on stderr: auto, bar, lines or quiet")
}

// load resolves the data path (flag > $SENTIBENCH_DATA > cache > download) and loads it.
func (f *dataFlags) load(cmd *cobra.Command) (*data.Corpus, error) {
	if f.limit < 0 {
		return nil, usageError{fmt.Sprintf("--limit %d: must be 0 (all) or positive", f.limit)}
	}
	mode, err := progress.ParseMode(f.progress)
	if err != nil {
		return nil, usageError{"--progress: " + err.Error()}
	}
	if cmd.Flags().Changed("labels") {
		for i, l := range f.labels {
			f.labels[i] = strings.TrimSpace(l)
		}
		if err := data.CheckLabelList(f.labels); err != nil {
			return nil, usageError{fmt.Sprintf("--labels %s: %v", strings.Join(f.labels, ","), err)}
		}
	}
	ctx := cmd.Context()
	path, err := data.Resolve(ctx, data.Locator{
		Path: f.path, Env: data.EnvFrom(os.Getenv), NoDownload: f.noDownload,
		Progress: cmd.ErrOrStderr(), ProgressMode: mode,
	})
	if err != nil {
		return nil, err
	}
	c, err := data.Load(ctx, data.Options{
		Path: path, UnsupPath: f.unsup, WithUnsup: f.withUnsup, Limit: f.limit, Seed: f.seed,
		Fields: f.fields, Labels: f.labels, Target: f.target, Progress: cmd.ErrOrStderr(), ProgressMode: mode,
	})
	var unknown *data.UnknownLabelsError
	var absent *data.AbsentLabelsError
	switch {
	case errors.As(err, &unknown) || errors.As(err, &absent):
		return nil, usageError{fmt.Sprintf("--labels %s: %v", strings.Join(f.labels, ","), err)}
	case errors.Is(err, data.ErrTargetNeedsIMDB):
		return nil, usageError{fmt.Sprintf("--target %s: %v", f.target, err)}
	}
	return c, err
}

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Inspect and download the data sets",
		Long: `Inspect and download the data sets.

The data are found, in this order: the --data flag, $SENTIBENCH_DATA, the official IMDB archive
in the cache ($SENTIBENCH_CACHE, default sentibench/ in the user cache directory), and
otherwise a download of the official archive into the cache (verified by its SHA-256).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDataInfoCmd(), newDataFetchCmd())
	return cmd
}

// noArgs rejects positional arguments as a usage error (exit code 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q (see '%s --help')", args[0], cmd.CommandPath())}
	}
	return nil
}

func newDataInfoCmd() *cobra.Command {
	var df dataFlags
	var maxWords int
	var dump string
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Counts, ratings, token lengths and vocabulary of a data set, after the recipe's split",
		Long: `Reads a data set as training would (the recipe's --limit sample, train/valid split and
basic_english vocabulary) and prints: the examples per part and label, the rating histogram,
the token-length percentiles (basic_english tokens; nearest rank), the vocabulary size, and
the time taken. --dump-data DIR writes split.tsv and vocab.txt exactly as
torch_ref.py --dump-data does, to compare the two.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxWords < 0 {
				return usageError{fmt.Sprintf("--vocab-size %d: must be 0 (all) or positive", maxWords)}
			}
			t0 := time.Now()
			c, err := df.load(cmd)
			if err != nil {
				return err
			}
			readTime := time.Since(t0)
			t1 := time.Now()
			toks, err := data.TokenizeAll(cmd.Context(), c.Texts(), data.BasicEnglish{}, 0)
			if err != nil {
				return err
			}
			v := data.BuildVocab(toks, c.Train, maxWords)
			vocabTime := time.Since(t1)
			if dump != "" {
				if err := dumpData(dump, c, v); err != nil {
					return err
				}
			}
			printInfo(cmd.OutOrStdout(), c, toks, v, df.seed, df.limit, readTime, vocabTime)
			return nil
		},
	}
	df.register(cmd)
	cmd.Flags().IntVar(&maxWords, "vocab-size", data.DefaultMaxWords, "most frequent train tokens kept in the vocabulary, besides <unk> and <pad> (0: all)")
	cmd.Flags().StringVar(&dump, "dump-data", "", "write DIR/split.tsv and DIR/vocab.txt as torch_ref.py --dump-data does")
	return cmd
}

func newDataFetchCmd() *cobra.Command {
	var url, sum, mode string
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Download the official IMDB archive into the cache and verify it",
		Long: `Downloads the official IMDB archive (` + data.IMDBURL + `) into the cache
($SENTIBENCH_CACHE, default sentibench/ in the user cache directory), resuming a partial
download, and verifies its SHA-256. Prints the archive's path. Does nothing when it is there.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pm, err := progress.ParseMode(mode)
			if err != nil {
				return usageError{"--progress: " + err.Error()}
			}
			if (url == "") != (sum == "") {
				return usageError{"--url and --sha256 go together"}
			}
			path, err := data.Fetch(cmd.Context(), data.Locator{
				Env: data.EnvFrom(os.Getenv), URL: url, SHA256: sum,
				Progress: cmd.ErrOrStderr(), ProgressMode: pm,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "download from this mirror instead (with --sha256)")
	cmd.Flags().StringVar(&sum, "sha256", "", "the mirror's SHA-256")
	cmd.Flags().StringVar(&mode, "progress", "auto", "progress reports on stderr: auto, bar, lines or quiet")
	return cmd
}

// dumpData writes split.tsv and vocab.txt in torch_ref.py's --dump-data format.
func dumpData(dir string, c *data.Corpus, v *data.Vocab) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	for _, part := range []struct {
		name string
		idx  []int
	}{{"train", c.Train}, {"valid", c.Valid}, {"test", c.Test}} {
		for _, i := range part.idx {
			fmt.Fprintf(&b, "%s\t%s\n", part.name, c.Examples[i].Name)
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "split.tsv"), []byte(b.String())); err != nil {
		return err
	}
	return v.Save(filepath.Join(dir, "vocab.txt"))
}

func printInfo(w io.Writer, c *data.Corpus, toks *data.Tokens, v *data.Vocab, seed uint64, limit int, readTime, vocabTime time.Duration) {
	fmt.Fprintf(w, "Data: %s (%s), seed %d", c.Source, c.Format, seed)
	if limit > 0 {
		fmt.Fprintf(w, ", limit %d per folder", limit)
	}
	fmt.Fprintln(w)
	for _, n := range c.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	fmt.Fprintf(w, "Examples: %s labelled", commas(len(c.Train)+len(c.Valid)+len(c.Test)))
	if len(c.Unsup) > 0 {
		fmt.Fprintf(w, ", %s unlabelled", commas(len(c.Unsup)))
	}
	fmt.Fprintf(w, "; labels (in id order): %s\n\n", strings.Join(c.Classes, ", "))

	// Counts per part and label.
	t := table{append(append([]string{"split"}, c.Classes...), "total")}
	row := func(name string, idx []int) {
		counts := make([]int, len(c.Classes))
		for _, i := range idx {
			if l := c.Examples[i].Label; l >= 0 {
				counts[l]++
			}
		}
		r := []string{name}
		for _, n := range counts {
			r = append(r, commas(n))
		}
		t = append(t, append(r, commas(len(idx))))
	}
	row("train part", slices.Concat(c.Train, c.Valid))
	row("  train", c.Train)
	row("  valid", c.Valid)
	row("test", c.Test)
	if len(c.Unsup) > 0 {
		r := []string{"unsup"}
		for range c.Classes {
			r = append(r, "")
		}
		t = append(t, append(r, commas(len(c.Unsup))))
	}
	t.print(w)

	// Ratings, per label.
	ratings := map[int][]int{} // rating -> count per label
	for _, e := range c.Examples {
		if e.Rating == 0 || e.Label < 0 {
			continue
		}
		if ratings[e.Rating] == nil {
			ratings[e.Rating] = make([]int, len(c.Classes))
		}
		ratings[e.Rating][e.Label]++
	}
	if len(ratings) > 0 {
		fmt.Fprintln(w, "\nRatings (from the file names):")
		t = table{append([]string{"rating"}, c.Classes...)}
		for _, r := range slices.Sorted(maps.Keys(ratings)) {
			row := []string{fmt.Sprint(r)}
			for _, n := range ratings[r] {
				row = append(row, commas(n))
			}
			t = append(t, row)
		}
		t.print(w)
	}

	// Token lengths.
	lengths := toks.Lengths()
	fmt.Fprintln(w, "\nTokens per example (basic_english; nearest-rank percentiles):")
	t = table{{"split", "min", "p50", "p90", "p99", "max", "mean", "tokens"}}
	lenRow := func(name string, idx []int) {
		if len(idx) == 0 {
			return
		}
		ls := make([]int, len(idx))
		total := 0
		for k, i := range idx {
			ls[k] = lengths[i]
			total += ls[k]
		}
		slices.Sort(ls)
		t = append(t, []string{name, fmt.Sprint(ls[0]), fmt.Sprint(percentile(ls, 50)), fmt.Sprint(percentile(ls, 90)),
			fmt.Sprint(percentile(ls, 99)), fmt.Sprint(ls[len(ls)-1]), fmt.Sprintf("%.1f", float64(total)/float64(len(ls))), commas(total)})
	}
	lenRow("train", c.Train)
	lenRow("valid", c.Valid)
	lenRow("test", c.Test)
	lenRow("unsup", c.Unsup)
	t.print(w)

	distinct := 0
	for id, n := range toks.Counts(c.Train) {
		if n > 0 && toks.Types[id] != data.UnkToken && toks.Types[id] != data.PadToken {
			distinct++
		}
	}
	fmt.Fprintf(w, "\nVocabulary: %s tokens (the %s most frequent of %s distinct train tokens, plus <unk>, <pad>)\n",
		commas(v.Len()), commas(v.Len()-2), commas(distinct))
	fmt.Fprintf(w, "Time: read %.2f s; tokenized and vocabulary built %.2f s\n", readTime.Seconds(), vocabTime.Seconds())
}

// table prints rows of cells: the first column left-aligned, the others right-aligned.
type table [][]string

func (t table) print(w io.Writer) {
	var widths []int
	for _, r := range t {
		for k, cell := range r {
			if k == len(widths) {
				widths = append(widths, 0)
			}
			widths[k] = max(widths[k], utf8.RuneCountInString(cell))
		}
	}
	for _, r := range t {
		var b strings.Builder
		for k, cell := range r {
			pad := strings.Repeat(" ", widths[k]-utf8.RuneCountInString(cell))
			if k == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString("  " + pad + cell)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// percentile is the nearest-rank p-th percentile of sorted values.
func percentile(sorted []int, p int) int {
	k := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(k, 1)-1]
}

// commas prints n with thousands separators.
func commas(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
