package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/report"
	"github.com/sentibench/sentibench/train"
)

// benchCell is one run of the matrix.
type benchCell struct {
	model, device string
	dropout       float64
}

func (c benchCell) dirName() string {
	return fmt.Sprintf("%s-%s-dropout%s", c.model, c.device, strconv.FormatFloat(c.dropout, 'f', -1, 64))
}

func newBenchCmd() *cobra.Command {
	var (
		out      outputFlags
		models   []string
		dropouts []float64
		devices  []string
		dataF    string
		dir      string
		format   string
		charts   string
		quick    bool
		cell     int
		list     bool
		base     = train.DefaultConfig("cnn")
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Train a matrix of models x dropouts x devices, then report and chart them",
		Long: `bench trains every combination of --models, --dropouts and --devices into its own run
directory under --dir (named MODEL-DEVICE-dropoutP), with the recipe's settings otherwise, then
prints the comparison table of 'sentibench report' and draws its charts (default DIR/charts).

A finished run is kept and an unfinished one is resumed, so an interrupted bench continues
where it stopped. --quick is a demo preset: the bundled sample, 2 epochs, cnn and lstm with
small hidden sizes, dropout 0.5, 0.2, 0.1 (the seed's sweep).

--cell I trains only cell I of the matrix (counted from 0, in the order --list-cells prints:
models, then devices, then dropouts) and stops without a report, so that the cells can run
as separate processes, on separate machines sharing --dir: a Kubernetes Indexed Job (--cell
defaults to $JOB_COMPLETION_INDEX when that is set), a Slurm array. A finished cell is kept,
an unfinished one resumed, as in the whole bench. When every cell has finished, 'sentibench
report DIR/*-dropout*' gathers them, or the same bench without --cell, which keeps them all
and prints the report with its charts.`,
		Example: `  sentibench bench --models lstm,cnn --dropouts 0.5,0.2,0.1 --dir bench/
  sentibench bench --quick
  sentibench bench --models lstm,cnn --dropouts 0.5,0.2,0.1 --dir bench/ --list-cells
  sentibench bench --models lstm,cnn --dropouts 0.5,0.2,0.1 --dir bench/ --cell 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return usageError{fmt.Sprintf("--format: %v", err)}
			}
			cellFrom := func() string { return fmt.Sprintf("--cell %d", cell) } // names where the cell number came from
			if cmd.Flags().Changed("cell") {
				if cell < 0 {
					return usageError{fmt.Sprintf("--cell %d: a cell number counts from 0", cell)}
				}
			} else if v := os.Getenv(jobIndexEnv); v != "" {
				if cell, err = strconv.Atoi(v); err != nil || cell < 0 {
					return usageError{fmt.Sprintf("$%s %q (the default of --cell): not a cell number (0, 1, ...)", jobIndexEnv, v)}
				}
				cellFrom = func() string { return fmt.Sprintf("$%s=%d (the default of --cell)", jobIndexEnv, cell) }
			}
			if quick {
				if !cmd.Flags().Changed("data") {
					dataF = data.SampleName
				}
				if !cmd.Flags().Changed("epochs") {
					base.Epochs = 2
				}
				if !cmd.Flags().Changed("hidden") {
					base.Hidden = 64
				}
			}
			var cells []benchCell
			for _, m := range models {
				for _, d := range devices {
					for _, p := range dropouts {
						cells = append(cells, benchCell{model: strings.TrimSpace(m), device: strings.TrimSpace(d), dropout: p})
					}
				}
			}
			if len(cells) == 0 {
				return usageError{"the matrix is empty: give --models, --dropouts and --devices"}
			}
			if cell >= len(cells) {
				return usageError{fmt.Sprintf("%s: the matrix has %d cells, 0..%d (--list-cells prints them)", cellFrom(), len(cells), len(cells)-1)}
			}
			if list {
				for i, c := range cells {
					fmt.Fprintf(cmd.OutOrStdout(), "%d\t%s\n", i, filepath.Join(dir, c.dirName()))
				}
				return nil
			}
			hooks, closeMeter, err := out.hooks(cmd)
			if err != nil {
				return err
			}
			defer closeMeter()
			ctx := cmd.Context()
			if base.Data, err = data.Resolve(ctx, data.Locator{Path: dataF, Env: data.EnvFrom(os.Getenv),
				Progress: cmd.ErrOrStderr(), ProgressMode: hooks.ProgressMode}); err != nil {
				return err
			}
			for _, c := range cells { // every cell's settings, before the first run
				cfg := base
				cfg.Kind, cfg.Device, cfg.Dropout = c.model, c.device, c.dropout
				if err := cfg.Check(); err != nil {
					return configError(cmd, err)
				}
			}
			if cell >= 0 {
				c := cells[cell]
				runDir := filepath.Join(dir, c.dirName())
				fmt.Fprintf(hooks.Log, "== bench cell %d of %d (0..%d): %s\n", cell, len(cells), len(cells)-1, runDir)
				finished, err := benchCellRun(ctx, c, base, runDir, hooks)
				switch {
				case finished:
					fmt.Fprintln(hooks.Log, "finished already; kept")
				case errors.Is(err, train.ErrInterrupted):
					return exitError{130, err}
				case err != nil:
					return fmt.Errorf("bench %s: %w", runDir, err)
				}
				fmt.Fprintf(hooks.Log, "When all %d cells have finished: sentibench report %s\n", len(cells), filepath.Join(dir, "*-dropout*"))
				return nil
			}
			var dirs []string
			for i, c := range cells {
				runDir := filepath.Join(dir, c.dirName())
				dirs = append(dirs, runDir)
				fmt.Fprintf(hooks.Log, "== bench %d/%d: %s\n", i+1, len(cells), runDir)
				finished, err := benchCellRun(ctx, c, base, runDir, hooks)
				if finished {
					fmt.Fprintln(hooks.Log, "finished already; kept")
					continue
				}
				if err != nil {
					if errors.Is(err, train.ErrInterrupted) {
						return exitError{130, err}
					}
					return fmt.Errorf("bench %s: %w", runDir, err)
				}
			}
			if charts == "" {
				charts = filepath.Join(dir, "charts")
			}
			fmt.Fprintln(cmd.OutOrStdout())
			paths, err := report.Write(cmd.OutOrStdout(), dirs, report.Options{Format: f, ChartsDir: charts})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\n%d charts in %s\n", len(paths), charts)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&models, "models", []string{"lstm", "cnn"}, "models to train")
	fl.Float64SliceVar(&dropouts, "dropouts", []float64{0.5, 0.2, 0.1}, "dropout values")
	fl.StringSliceVar(&devices, "devices", []string{"cpu"}, "devices (cpu, cuda)")
	fl.StringVar(&dataF, "data", "", "data set (as for train)")
	fl.StringVar(&dir, "dir", "bench", "directory of the run directories")
	fl.StringVar(&format, "format", "text", "table format: text, markdown or csv")
	fl.StringVar(&charts, "charts", "", "directory for the PNG charts (default DIR/charts)")
	fl.BoolVar(&quick, "quick", false, "demo preset: the bundled sample, 2 epochs, hidden 64")
	fl.IntVar(&cell, "cell", -1, "train only this cell of the matrix (from 0), then stop (default $"+jobIndexEnv+" when set; all cells and the report without)")
	fl.BoolVar(&list, "list-cells", false, "print the matrix's cells (number and run directory), one a line, and stop")
	fl.IntVar(&base.Epochs, "epochs", base.Epochs, "epochs per run")
	fl.IntVar(&base.Limit, "limit", 0, "seeded sample of this many reviews per IMDB folder")
	fl.IntVar(&base.MaxBatches, "max-batches", 0, "cap the training batches of each epoch")
	fl.IntVar(&base.Hidden, "hidden", 0, "recurrent hidden size (default: the recipe's 256)")
	fl.IntVar(&base.Threads, "threads", 0, "worker threads (default: all cores)")
	fl.Uint64Var(&base.Seed, "seed", base.Seed, "seed")
	fl.StringVar(&base.Encoder, "encoder", "", "bigru: the frozen encoder")
	out.add(cmd)
	return cmd
}

// jobIndexEnv is the variable a Kubernetes Indexed Job sets to the index of each of its pods:
// the default of bench --cell.
const jobIndexEnv = "JOB_COMPLETION_INDEX"

// benchCellRun trains (or resumes) one cell of the matrix in runDir, holding the directory's
// lock from the look at its state to the end of the training, so that two benches over one
// directory do not train the same run twice. finished says that the run had finished already.
func benchCellRun(ctx context.Context, c benchCell, base train.Config, runDir string, hooks train.Hooks) (finished bool, err error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return false, err
	}
	lock, err := train.LockRun(runDir)
	if err != nil {
		return false, err
	}
	defer lock.Unlock()
	finished, started := runState(runDir)
	opts := train.Options{Lock: lock}
	switch {
	case finished:
		return true, nil
	case started:
		_, err = train.ResumeWith(ctx, runDir, hooks, opts)
	default:
		cfg := base
		cfg.Kind, cfg.Device, cfg.Dropout, cfg.RunDir = c.model, c.device, c.dropout, runDir
		if c.model == "bigru" {
			cfg.Hidden = 0
		}
		_, err = train.RunWith(ctx, cfg, hooks, opts)
	}
	return false, err
}

// runState says whether a run directory holds a finished run (its log ends with the test) or
// a started one.
func runState(dir string) (finished, started bool) {
	if _, err := os.Stat(filepath.Join(dir, train.ConfigFile)); err != nil {
		return false, false
	}
	rl, err := train.ReadRunLog(dir)
	return err == nil && rl.Finished, true
}
