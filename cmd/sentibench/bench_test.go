package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// benchArgs is a bench of two cells (a small cnn at dropout 0.5 and 0.2) on the sample, in dir.
func benchArgs(dir string, more ...string) []string {
	return append([]string{"bench", "--models", "cnn", "--dropouts", "0.5,0.2", "--data", "sample", "--limit", "30",
		"--epochs", "3", "--threads", "1", "--dir", dir, "-q", "--progress", "quiet"}, more...)
}

// stopAfter is a Meter that cancels the run's context after n training batches (as Ctrl-C).
type stopAfter struct {
	train.WallClock
	n, seen int
	cancel  func()
}

func (s *stopAfter) AddWork(tokens int, flops float64) {
	s.WallClock.AddWork(tokens, flops)
	if s.seen++; s.seen == s.n {
		s.cancel()
	}
}

// TestBenchCell: `bench --cell I` (or $JOB_COMPLETION_INDEX) trains that cell alone; a cell that
// was interrupted is resumed and ends with the figures of an uninterrupted one; `report`
// gathers the cells.
func TestBenchCell(t *testing.T) {
	t.Setenv(jobIndexEnv, "")
	whole, cells := t.TempDir(), t.TempDir()
	out, errOut, err := run(t, benchArgs(whole, "--list-cells")...)
	if err != nil {
		t.Fatalf("--list-cells: %v\n%s", err, errOut)
	}
	want := "0\t" + filepath.Join(whole, "cnn-cpu-dropout0.5") + "\n1\t" + filepath.Join(whole, "cnn-cpu-dropout0.2") + "\n"
	if out != want {
		t.Errorf("--list-cells printed %q, want %q", out, want)
	}
	if _, errOut, err := run(t, benchArgs(whole, "--cell", "1")...); err != nil {
		t.Fatalf("--cell 1: %v\n%s", err, errOut)
	}
	if entries, _ := os.ReadDir(whole); len(entries) != 1 || entries[0].Name() != "cnn-cpu-dropout0.2" {
		t.Fatalf("--cell 1 wrote %v, want cnn-cpu-dropout0.2 alone", entries)
	}
	ref := finalOf(t, filepath.Join(whole, "cnn-cpu-dropout0.2"))

	// Cell 1 of the other bench, interrupted after two batches, with the cell's own config.
	info, err := train.ReadRunInfo(filepath.Join(whole, "cnn-cpu-dropout0.2"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.RunDir = filepath.Join(cells, "cnn-cpu-dropout0.2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hooks := train.Hooks{Meter: &stopAfter{n: 2, cancel: cancel}, Log: io.Discard, Progress: io.Discard}
	if _, err := train.Run(ctx, cfg, hooks); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("interrupted cell: %v", err)
	}
	if rl, err := train.ReadRunLog(cfg.RunDir); err != nil || rl.Finished || len(rl.Epochs) >= 3 {
		t.Fatalf("the interrupted cell's log: finished %v, %d epochs, %v", rl.Finished, len(rl.Epochs), err)
	}
	epoch1, err := os.ReadFile(filepath.Join(cfg.RunDir, train.RunLogFile)) // kept by the resume, timings and all
	if err != nil {
		t.Fatal(err)
	}
	// The job's pods: index 1 resumes it, index 0 trains the other cell.
	for _, index := range []string{"1", "0"} {
		t.Setenv(jobIndexEnv, index)
		if _, errOut, err := run(t, benchArgs(cells)...); err != nil {
			t.Fatalf("%s=%s: %v\n%s", jobIndexEnv, index, err, errOut)
		}
		if _, err := os.Stat(filepath.Join(cells, "cnn-cpu-dropout0.5")); index == "1" && err == nil {
			t.Fatalf("%s=1 trained cell 0 too", jobIndexEnv)
		}
	}
	if got := finalOf(t, cfg.RunDir); got.TestLoss != ref.TestLoss || got.TestAcc != ref.TestAcc || got.BestValidLoss != ref.BestValidLoss {
		t.Errorf("resumed cell: test loss %v acc %v best valid loss %v; uninterrupted %v %v %v",
			got.TestLoss, got.TestAcc, got.BestValidLoss, ref.TestLoss, ref.TestAcc, ref.BestValidLoss)
	}
	if log, _ := os.ReadFile(filepath.Join(cfg.RunDir, train.RunLogFile)); !strings.HasPrefix(string(log), string(epoch1)) {
		t.Errorf("the cell was not resumed: its log does not begin with the interrupted run's\n%s", log)
	}
	finalOf(t, filepath.Join(cells, "cnn-cpu-dropout0.5"))
	out, errOut, err = run(t, "report", filepath.Join(cells, "cnn-cpu-dropout0.5"), filepath.Join(cells, "cnn-cpu-dropout0.2"))
	if err != nil {
		t.Fatalf("report: %v\n%s", err, errOut)
	}
	if n := strings.Count(out, "cnn "); n != 2 {
		t.Errorf("report shows %d cnn runs, want 2:\n%s", n, out)
	}
	// A finished cell is kept.
	t.Setenv(jobIndexEnv, "0")
	before, _ := os.ReadFile(filepath.Join(cells, "cnn-cpu-dropout0.5", train.RunLogFile))
	if _, errOut, err := run(t, benchArgs(cells)...); err != nil {
		t.Fatalf("a finished cell again: %v\n%s", err, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(cells, "cnn-cpu-dropout0.5", train.RunLogFile)); string(after) != string(before) {
		t.Error("a finished cell was trained again")
	}
}

// finalOf is the test line of a finished run.
func finalOf(t *testing.T, dir string) train.FinalRecord {
	t.Helper()
	rl, err := train.ReadRunLog(dir)
	if err != nil || !rl.Finished {
		t.Fatalf("%s: finished %v, %v", dir, rl.Finished, err)
	}
	return rl.Final
}

// TestBenchCellBadInput: a cell number outside the matrix, from --cell or from
// $JOB_COMPLETION_INDEX, is a usage error naming where it came from, before any work.
func TestBenchCellBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--cell", "2"}, "--cell 2: the matrix has 2 cells, 0..1"},
		{"", []string{"--cell", "-3"}, "--cell -3: a cell number counts from 0"},
		{"2", nil, "$JOB_COMPLETION_INDEX=2 (the default of --cell): the matrix has 2 cells, 0..1"},
		{"one", nil, `$JOB_COMPLETION_INDEX "one" (the default of --cell): not a cell number`},
		{"one", []string{"--cell", "5"}, "--cell 5: the matrix has 2 cells"}, // the flag wins
	} {
		t.Setenv(jobIndexEnv, c.env)
		_, _, err := run(t, benchArgs(dir, c.args...)...)
		if err == nil || !isUsage(err) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s=%q %v: %v; want a usage error %q", jobIndexEnv, c.env, c.args, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("a refused cell left %d files in %s", len(entries), dir)
	}
}
