package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/report"
)

func newReportCmd() *cobra.Command {
	var format, charts string
	cmd := &cobra.Command{
		Use:   "report RUN_DIR...",
		Short: "Compare training runs: a table (text, Markdown or CSV) and PNG charts",
		Long: `report reads run directories (written by sentibench train: run.jsonl, config.json,
best/model.safetensors) and prints one line per run: model, device, dropout, parameters,
checkpoint size, best valid and test accuracy, mean time per epoch, tokens/s, peak RSS and
peak GPU memory. An unfinished run shows what its log holds so far. When a run has more than
two classes, the table gets its test macro-F1 and, for ordinal classes (numbers, rating
levels), the test's mean absolute error, and (text and Markdown) a table of its test by class
follows: each class's precision, recall, F1 and number of examples, and the macro average. A RUN_DIR may also be a
bare JSONL run log, such as the one ../shared/bench/torch_ref.py --json writes, to compare
against the PyTorch reference.

With --charts DIR it also draws PNG charts into DIR: mean time per epoch, peak memory and
accuracy per run, valid accuracy by epoch, and each run's loss and accuracy curves.`,
		Example: `  sentibench report runs/cnn runs/lstm
  sentibench report runs/* --format markdown --charts report/`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Sprintf("report needs at least one run directory (see '%s --help')", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return usageError{fmt.Sprintf("--format: %v", err)}
			}
			paths, err := report.Write(cmd.OutOrStdout(), args, report.Options{Format: f, ChartsDir: charts})
			if err != nil {
				return err
			}
			if len(paths) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d charts to %s\n", len(paths), charts)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "table format: text, markdown or csv")
	cmd.Flags().StringVar(&charts, "charts", "", "also draw PNG charts into this directory")
	return cmd
}
