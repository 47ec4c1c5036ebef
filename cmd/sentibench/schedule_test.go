package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// smallTrainArgs train a cnn of a second on 40 reviews of the bundled sample per folder: 4
// batches of 16 per epoch.
func smallTrainArgs(runDir string, extra ...string) []string {
	return append([]string{"train", "--model", "cnn", "--data", "sample", "--limit", "40", "--epochs", "2",
		"--batch-size", "16", "--embedding-dim", "8", "--filters", "4", "--vocab-size", "500", "--threads", "2",
		"--run", runDir, "-q"}, extra...)
}

// TestTrainScheduleFlagErrors: a schedule, warmup, weight decay or accumulation that cannot be is
// a usage error (exit 2) naming the flag, and leaves no run directory.
func TestTrainScheduleFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--lr-schedule", "exponential"}, "--lr-schedule exponential: want constant, linear, cosine, cosine-restarts or polynomial"},
		{[]string{"--warmup-ratio", "-0.1"}, "--warmup-ratio -0.1: want a number in [0, 1]"},
		{[]string{"--warmup-steps", "-3"}, "--warmup-steps -3: want 0 (no warmup)"},
		{[]string{"--warmup-steps", "3", "--warmup-ratio", "0.1"}, "--warmup-ratio 0.1: give warmup steps (3) or a warmup ratio, not both"},
		{[]string{"--warmup-steps", "9"}, "--warmup-steps 9: beyond the run's 8 optimiser steps (2 epochs of 4 batches)"},
		{[]string{"--weight-decay", "-1"}, "--weight-decay -1: want 0 (no decay)"},
		{[]string{"--grad-accum", "17"}, "--grad-accum 17: more micro-batches than the batch size 16"},
		{[]string{"--grad-accum", "0"}, "--grad-accum 0: want a positive number"},
	} {
		runDir := filepath.Join(t.TempDir(), "run")
		_, _, err := run(t, smallTrainArgs(runDir, c.args...)...)
		if err == nil || !isUsage(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want a usage error %q", c.args, err, c.want)
		}
		if _, err := os.Stat(runDir); !os.IsNotExist(err) {
			t.Errorf("%v: the run directory was left behind (%v)", c.args, err)
		}
	}
}
