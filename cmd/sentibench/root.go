package main

import (
	"fmt"
	"runtime/debug"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usageError marks an error in the command line itself (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sentibench",
		Short: "Train, evaluate, distil and serve text classifiers in Go",
		Long: `sentibench trains sentiment classifiers on IMDB (or your own texts) with a packed
bidirectional LSTM, a 1-D text CNN, or a bidirectional GRU over frozen transformer features,
on the CPU or on CUDA, following the reference recipe (../shared/bench/RECIPE.md).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error { return checkGivenValues(c) }
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Sprintf("%v (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(
		newVersionCmd(),
		newDataCmd(),
		newReportCmd(),
		newTrainCmd(),
		newDistillCmd(),
		newEvalCmd(),
		newPredictCmd(),
		newBenchCmd(),
		newEmbedCmd(),
		newWordvecCmd(),
		newServeCmd(),
		newExportCmd(),
	)
	return root
}

// positiveFlags are the flags whose zero (or negative) value stands for "the default" inside
// the program: given on the command line, they must be positive, so that `--lr 0` or
// `--threads -1` is an error rather than a silent default.
var positiveFlags = []string{"threads", "batch-size", "epochs", "hidden", "layers", "embedding-dim", "filters",
	"lr", "teacher-batch", // train, distill, eval, predict, embed, bench
	"max-batch", "max-queue", "max-body-bytes", "max-texts", "max-text-bytes", // serve
	"dim", "window", "negative", "min-count"} // wordvec

// checkGivenValues refuses a value the user gave that the program would otherwise replace by
// its default without a word: a non-positive size or rate, a negative dropout.
func checkGivenValues(c *cobra.Command) error {
	var err error
	c.Flags().Visit(func(f *pflag.Flag) {
		v, perr := strconv.ParseFloat(f.Value.String(), 64)
		if err != nil || perr != nil {
			return
		}
		for _, name := range positiveFlags {
			if f.Name == name && !(v > 0) {
				err = usageError{fmt.Sprintf("--%s %s: want a positive number (leave the flag out for the default)", name, f.Value)}
			}
		}
		if f.Name == "dropout" && v < 0 {
			err = usageError{fmt.Sprintf("--dropout %s: want a probability in [0, 1)", f.Value)}
		}
	})
	return err
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "sentibench", buildVersion())
			return nil
		},
	}
}

// version is set at build time with -ldflags "-X main.version=..." (deploy/Dockerfile does).
var version = "dev"

// buildVersion is the version this binary reports and records in its runs: the one set with
// -ldflags, else the module version `go install ...@VERSION` built it at, else "dev".
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}
