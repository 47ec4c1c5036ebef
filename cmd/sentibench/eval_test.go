package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// writeTSV writes n labelled rows (label, text[, split]) into dir/name.
func writeTSV(t *testing.T, dir, name string, n int, split string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("label\ttext")
	if split != "" {
		b.WriteString("\tsplit")
	}
	b.WriteString("\n")
	for i := range n {
		fmt.Fprintf(&b, "%s\t%s film, number %d", []string{"neg", "pos"}[i%2], []string{"a dull and boring", "a wonderful, moving"}[i%2], i)
		if split != "" {
			b.WriteString("\t" + split)
		}
		b.WriteString("\n")
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEvalOtherData: a run evaluated on another labelled file reads every row by default (it
// once took the test fifth of the file, split by the run's seed, and failed on a file whose rows
// were all test), says how many it read, and --split selects by the file's split column.
func TestEvalOtherData(t *testing.T) {
	dir := t.TempDir()
	runDir := filepath.Join(dir, "cnn")
	if _, errOut, err := run(t, "train", "--model", "cnn", "--data", "sample", "--limit", "40", "--epochs", "1",
		"--batch-size", "16", "--embedding-dim", "8", "--filters", "4", "--vocab-size", "500", "--threads", "2",
		"--run", runDir, "-q"); err != nil {
		t.Fatalf("train: %v\n%s", err, errOut)
	}
	info, err := train.ReadRunInfo(runDir)
	if err != nil {
		t.Fatal(err)
	}
	plain := writeTSV(t, dir, "other.tsv", 87, "")
	allTest := writeTSV(t, dir, "other-test.tsv", 87, "test")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--data", plain}, []string{"Data: 87 labelled examples read from " + plain + "; evaluating all of them", "Run " + runDir + ", all examples of " + plain, "Examples: 87 |"}},
		{[]string{"--data", allTest}, []string{"evaluating all of them", "Examples: 87 |"}},
		{[]string{"--data", allTest, "--split", "test"}, []string{"evaluating its test part (87)", "test split of " + allTest, "Examples: 87 |"}},
		{nil, []string{"Run " + runDir + ", test split\n", fmt.Sprintf("Examples: %d |", info.Sizes["test"])}},
		{[]string{"--split", "all"}, []string{"all examples\n", fmt.Sprintf("Examples: %d |", info.Sizes["train"]+info.Sizes["valid"]+info.Sizes["test"])}},
	} {
		out, errOut, err := run(t, append([]string{"eval", "--run", runDir}, c.args...)...)
		if err != nil {
			t.Errorf("eval %v: %v\n%s", c.args, err, errOut)
			continue
		}
		for _, want := range c.want {
			if !strings.Contains(out, want) {
				t.Errorf("eval %v: the output lacks %q:\n%s", c.args, want, out)
			}
		}
	}

	// With --json the count goes to stderr, so that stdout stays one JSON object. (Not parsed
	// here: this tiny model predicts one class only, and its NaN precision does not encode.)
	out, errOut, _ := run(t, "eval", "--run", runDir, "--data", plain, "--json")
	if strings.Contains(out, "Data:") || !strings.Contains(errOut, "Data: 87 labelled examples read") {
		t.Errorf("eval --json: the count is not on stderr only:\nstdout %q\nstderr %q", out, errOut)
	}
	if _, _, err := run(t, "eval", "--run", runDir, "--data", plain, "--split", "test"); err == nil || !strings.Contains(err.Error(), "has no test part") {
		t.Errorf("--split test of a file without a split column: got %v, want an error saying it has no test part", err)
	}
}

// TestLongReviewsCLI: train, eval and predict say how many reviews they cut to --max-len, and
// eval and predict apply the run's recorded bound.
func TestLongReviewsCLI(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("label\ttext\npos\t" + strings.Repeat("great ", 300) + "\n")
	for i := range 60 {
		fmt.Fprintf(&b, "%s\tfilm %d was %s\n", []string{"neg", "pos"}[i%2], i, []string{"dull", "lovely"}[i%2])
	}
	data := filepath.Join(dir, "long.tsv")
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "cnn")
	out, errOut, err := run(t, "train", "--model", "cnn", "--data", data, "--epochs", "1", "--max-len", "50",
		"--batch-size", "16", "--embedding-dim", "8", "--filters", "4", "--threads", "2", "--run", runDir, "--progress", "quiet")
	line := "Data: 1 review longer than 50 tokens truncated to their first 50 (the longest had 300; --max-len sets the bound)"
	if err != nil || !strings.Contains(out, line) {
		t.Fatalf("train: %v, output lacks %q:\n%s%s", err, line, out, errOut)
	}
	if out, _, err = run(t, "eval", "--run", runDir, "--data", data); err != nil || !strings.Contains(out, line) {
		t.Errorf("eval: %v, output lacks %q:\n%s", err, line, out)
	}
	if _, errOut, err = run(t, "predict", "--run", runDir, strings.Repeat("great ", 60), "dull"); err != nil ||
		!strings.Contains(errOut, "predict: 1 text(s) longer than 50 tokens truncated to their first 50") {
		t.Errorf("predict: %v, stderr %q", err, errOut)
	}
	// 0 once meant whole reviews; now it would stand for the default, so given it is refused.
	for _, args := range [][]string{{"train", "--max-len", "0"}, {"eval", "--run", runDir, "--max-len", "-1"}, {"predict", "--run", runDir, "--max-len", "0", "good"}} {
		if _, _, err := run(t, args...); err == nil || !isUsage(err) || !strings.HasPrefix(err.Error(), "--max-len ") {
			t.Errorf("%v: got %v, want a usage error naming --max-len", args, err)
		}
	}
}
