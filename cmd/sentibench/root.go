package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
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
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if err := applyConfigFile(c); err != nil {
			return err
		}
		return checkGivenValues(c)
	}
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
	registerCompletions(root)
	return root
}

// errorMessage is the line a command's error prints. The train package's errors begin with
// "train: "; from another command that reads runs with it (eval, predict, serve) that would
// name the wrong command, so the line names the command that ran instead.
func errorMessage(cmd *cobra.Command, err error) string {
	msg := err.Error()
	if cmd == nil || cmd.Name() == "train" || !cmd.HasParent() {
		return msg
	}
	if rest, ok := strings.CutPrefix(msg, "train: "); ok {
		return cmd.Name() + ": " + rest
	}
	return msg
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
