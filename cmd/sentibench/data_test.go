package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/testutil"
)

// run executes the command line args, returning stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

func TestDataInfoSample(t *testing.T) {
	t.Setenv("SENTIBENCH_DATA", "")
	out, _, err := run(t, "data", "info", "--data", "sample", "--progress", "quiet")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Data: sample (imdb-archive), seed 1234",
		"train part  750  750  1,500",
		"  train     ", "  valid     ",
		"test        750  750  1,500",
		"rating  neg  pos",
		"split  min  p50  p90",
		"Vocabulary: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDataInfoIMDB is the acceptance check: the labelled archive gives 12,500 reviews per label
// and part, a 17,500/7,500 train/valid split and a vocabulary of 25,002.
func TestDataInfoIMDB(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	archive := testutil.Shared(t, "data/imdb/aclImdb_v1_labelled.tar.gz")
	out, _, err := run(t, "data", "info", "--data", archive, "--progress", "quiet")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"train part  12,500  12,500  25,000",
		"  train      8,768   8,732  17,500",
		"  valid      3,732   3,768   7,500",
		"test        12,500  12,500  25,000",
		"Vocabulary: 25,002 tokens (the 25,000 most frequent of 83,787 distinct train tokens",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDataInfoDumpMatchesTorchRef: --dump-data writes what torch_ref.py --dump-data writes
// (for --limit 300; data/testdata/torch_ref_parity.txt holds torch_ref.py's hashes).
func TestDataInfoDumpMatchesTorchRef(t *testing.T) {
	archive := testutil.Shared(t, "data/imdb/aclImdb_v1_labelled.tar.gz")
	dir := t.TempDir()
	if _, _, err := run(t, "data", "info", "--data", archive, "--limit", "300", "--progress", "quiet", "--dump-data", dir); err != nil {
		t.Fatal(err)
	}
	ref, err := os.ReadFile("../../data/testdata/torch_ref_parity.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"split.tsv", "vocab.txt"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if line := "300 " + f + " " + hex.EncodeToString(sum[:]); !strings.Contains(string(ref), line) {
			t.Errorf("%s: SHA-256 %x is not torch_ref.py's", f, sum)
		}
	}
}

func TestDataInfoErrors(t *testing.T) {
	t.Setenv("SENTIBENCH_DATA", "")
	for _, args := range [][]string{
		{"data", "info", "--limit", "-1", "--data", "sample"},
		{"data", "info", "--data", "sample", "extra"},
		{"data", "info", "--bogus"},
		{"data", "info", "--data", "sample", "--progress", "loud"},
		{"data", "info", "--data", "sample", "--vocab-size", "-3"},
		{"data", "fetch", "--url", "http://x"},
		{"data", "nonsense"},
	} {
		if _, _, err := run(t, args...); !isUsage(err) {
			t.Errorf("%q: error %v, want a usage error (exit 2)", args, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.tar.gz")
	_, _, err := run(t, "data", "info", "--data", missing)
	if err == nil || isUsage(err) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing data: %v, want an error (exit 1) naming the path", err)
	}
}

func TestDataFetch(t *testing.T) {
	body := data.SampleArchive()
	sum := sha256.Sum256(body)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "a.tar.gz", time.Time{}, bytes.NewReader(body))
	}))
	defer ts.Close()
	cache := t.TempDir()
	t.Setenv("SENTIBENCH_CACHE", cache)
	out, errOut, err := run(t, "data", "fetch", "--url", ts.URL+"/a.tar.gz", "--sha256", hex.EncodeToString(sum[:]), "--progress", "lines")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(cache, "imdb", data.IMDBFile)
	if strings.TrimSpace(out) != want || !strings.Contains(errOut, "download aclImdb_v1.tar.gz") {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
	// The cached archive is then what `data info` uses by default.
	t.Setenv("SENTIBENCH_DATA", "")
	out, _, err = run(t, "data", "info", "--no-download", "--progress", "quiet")
	if err != nil || !strings.Contains(out, "Data: "+want) {
		t.Fatalf("info from the cache: %v\n%s", err, out)
	}
}
