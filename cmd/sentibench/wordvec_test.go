package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wordvec trains vectors on the sample's train split, and train --glove starts from them.
func TestWordvecThenTrainWithVectors(t *testing.T) {
	t.Setenv("SENTIBENCH_DATA", "")
	dir := t.TempDir()
	vecs := filepath.Join(dir, "vectors.txt")
	out, _, err := run(t, "wordvec", "--data", "sample", "--out", vecs, "--epochs", "1", "--progress", "quiet")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "words of 100 dimensions, from 1,050 texts (1,050 train, 0 unlabelled;") {
		t.Fatalf("output %q: want the words, the dimension and the 1,050 train texts of the sample", out)
	}
	b, err := os.ReadFile(vecs)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(b), "\n", 2)[0]
	if !strings.HasSuffix(first, " 100") {
		t.Fatalf("first line %q: want \"COUNT 100\"", first)
	}
	run1 := filepath.Join(dir, "run")
	trainOut, _, err := run(t, "train", "--model", "cnn", "--data", "sample", "--epochs", "1", "--max-batches", "2",
		"--glove", vecs, "--run", run1, "--progress", "lines")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(trainOut, "Embedding: ") || !strings.Contains(trainOut, " words found in "+vecs) {
		t.Fatalf("train's log does not say the vectors were loaded:\n%s", trainOut)
	}
}

func TestWordvecErrors(t *testing.T) {
	t.Setenv("SENTIBENCH_DATA", "")
	if _, _, err := run(t, "wordvec", "--data", "sample"); !isUsage(err) || !strings.Contains(err.Error(), "--out is required") {
		t.Errorf("no --out: error %v, want a usage error", err)
	}
	missing := filepath.Join(t.TempDir(), "nope.tar.gz")
	if _, _, err := run(t, "wordvec", "--data", missing, "--out", "x.txt", "--progress", "quiet"); err == nil || !strings.Contains(err.Error(), "nope.tar.gz") {
		t.Errorf("missing data: error %v, want one naming the file", err)
	}
	noDir := filepath.Join(t.TempDir(), "no-such-dir", "v.txt")
	if _, _, err := run(t, "wordvec", "--data", "sample", "--out", noDir, "--progress", "quiet"); err == nil || !strings.Contains(err.Error(), "no-such-dir does not exist") {
		t.Errorf("--out in a missing directory: error %v, want one naming it", err)
	}
	if _, _, err := run(t, "wordvec", "--data", "sample", "--out", filepath.Join(t.TempDir(), "v.txt"), "--min-count", "100000", "--progress", "quiet"); err == nil || !strings.Contains(err.Error(), "no word occurs") {
		t.Errorf("min count above every word: error %v", err)
	}
}
