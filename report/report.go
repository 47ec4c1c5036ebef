package report

import (
	"fmt"
	"io"
)

// Options says what Write writes.
type Options struct {
	// Format is the table's format (FormatText when empty).
	Format Format
	// ChartsDir, when set, is where the PNG charts go (see WriteCharts).
	ChartsDir string
}

// Write loads the runs at paths (run directories or bare run logs), writes their comparison
// table to w and, given opt.ChartsDir, draws the charts; it returns the charts' paths. It is
// what `sentibench report` runs, and what `sentibench bench` runs on the directories of its
// matrix.
func Write(w io.Writer, paths []string, opt Options) ([]string, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("report: no run directories given")
	}
	format := opt.Format
	if format == "" {
		format = FormatText
	}
	if _, err := ParseFormat(string(format)); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	runs, err := LoadRuns(paths)
	if err != nil {
		return nil, err
	}
	if err := Compare(runs).Write(w, format); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if opt.ChartsDir == "" {
		return nil, nil
	}
	return WriteCharts(opt.ChartsDir, runs)
}
