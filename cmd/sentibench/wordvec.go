package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn/wordvec"
)

func newWordvecCmd() *cobra.Command {
	var (
		df  dataFlags
		cfg wordvec.Config
		out string
	)
	cmd := &cobra.Command{
		Use:   "wordvec --out FILE",
		Short: "Train word vectors (word2vec skip-gram) on the train split and unlabelled reviews",
		Long: `wordvec trains word vectors with word2vec's skip-gram and negative sampling on the
texts of the recipe's train split (the same split as 'train' with the same --seed and --limit)
and, with --unsup or --with-unsup, on the unlabelled reviews: never on the valid or test
reviews, and never on a label. It writes them in word2vec's text format, which
'train --glove FILE' reads to initialise the lstm's or cnn's word embedding.

With --threads 1 (the default) the vectors are a function of the data and the seed, bit for
bit; more threads are faster but not reproducible (lock-free updates, as word2vec.c).`,
		Example: `  sentibench wordvec --data aclImdb_v1_labelled.tar.gz --unsup aclImdb_v1_unsup.tar.gz --out imdb-100d.txt
  sentibench train --model lstm --dropout 0.2 --glove imdb-100d.txt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{"--out is required: the file to write the vectors to"}
			}
			// Fail before the long work when the vectors could not be written.
			if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
				return fmt.Errorf("--out %s: the directory %s does not exist", out, filepath.Dir(out))
			}
			mode, err := progress.ParseMode(df.progress)
			if err != nil {
				return usageError{"--progress: " + err.Error()}
			}
			t0 := time.Now()
			c, err := df.load(cmd)
			if err != nil {
				return err
			}
			texts := append(append([]int(nil), c.Train...), c.Unsup...)
			toks, err := data.TokenizeAll(cmd.Context(), c.Texts(), data.BasicEnglish{}, 0)
			if err != nil {
				return err
			}
			cfg.Seed = df.seed
			cfg.Progress, cfg.ProgressMode = cmd.ErrOrStderr(), mode
			vec, st, err := wordvec.Train(cmd.Context(), toks, texts, cfg)
			if err != nil {
				return err
			}
			if err := vec.Save(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s words of %d dimensions, from %s texts (%s train, %s unlabelled; %s tokens, %s distinct words under the minimum count) in %s\n",
				out, commas(st.Words), vec.Dim, commas(st.Texts), commas(len(c.Train)), commas(len(c.Unsup)),
				commas(int(st.Tokens)), commas(st.Dropped), time.Since(t0).Round(time.Second))
			return nil
		},
	}
	df.register(cmd)
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "the file to write the vectors to (word2vec text format)")
	f.IntVar(&cfg.Dim, "dim", 100, "vector size (the recipe's embedding size is 100)")
	f.IntVar(&cfg.Window, "window", 5, "largest distance between a word and its context words")
	f.IntVar(&cfg.Negative, "negative", 5, "noise words per (word, context) pair")
	f.IntVar(&cfg.MinCount, "min-count", 5, "leave out the words seen fewer times")
	f.Float64Var(&cfg.Sample, "sample", 1e-3, "subsampling threshold of frequent words (negative: none)")
	f.IntVar(&cfg.Epochs, "epochs", 5, "passes over the texts")
	f.Float64Var(&cfg.LR, "lr", 0.025, "starting learning rate (falls linearly to nothing)")
	f.IntVar(&cfg.Threads, "threads", 1, "training goroutines (1: reproducible)")
	return cmd
}
