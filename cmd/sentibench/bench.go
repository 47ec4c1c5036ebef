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
small hidden sizes, dropout 0.5, 0.2, 0.1 (the seed's sweep).`,
		Example: `  sentibench bench --models lstm,cnn --dropouts 0.5,0.2,0.1 --dir bench/
  sentibench bench --quick`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return usageError{fmt.Sprintf("--format: %v", err)}
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
			for _, c := range cells { // every cell's settings, before the first run
				cfg := base
				cfg.Model, cfg.Device, cfg.Dropout = c.model, c.device, c.dropout
				if err := cfg.Check(); err != nil {
					return configError(cmd, err)
				}
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
		cfg.Model, cfg.Device, cfg.Dropout, cfg.RunDir = c.model, c.device, c.dropout, runDir
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
