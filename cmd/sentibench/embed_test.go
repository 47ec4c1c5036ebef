package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
)

// embedArgs is `sentibench embed` over the tiny random BERT of ../shared and 40 reviews of the
// sample, in batches of 4 reviews (10 batches), into root.
func embedArgs(t *testing.T, root string, more ...string) []string {
	t.Helper()
	enc := testutil.Shared(t, "models/bert-uncased-random-L2-H32")
	return append([]string{"embed", "--encoder", enc, "--data", "sample", "--limit", "10", "--batch-size", "4",
		"--threads", "1", "--feature-cache", root, "--progress", "quiet"}, more...)
}

// startMain starts `sentibench ARGS...` as a process (the test binary's TestMainChild).
func startMain(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestMainChild$")
	cmd.Env = append(os.Environ(), mainChildEnv+"="+strings.Join(args, "\n"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// TestEmbedShardsMerge: `embed --shard 0/2` and `--shard 1/2` run at the same time as two
// processes, then `embed --merge` joins them into the cache that a plain `embed` writes, the
// same bytes in every file.
func TestEmbedShardsMerge(t *testing.T) {
	whole, sharded := t.TempDir(), t.TempDir()
	out, errOut, err := run(t, embedArgs(t, whole)...)
	if err != nil {
		t.Fatalf("embed: %v\n%s", err, errOut)
	}
	wholeDir := strings.TrimSpace(out)

	var procs []*exec.Cmd
	var outs []*bytes.Buffer
	for _, k := range []string{"0/2", "1/2"} {
		p, o := startMain(t, embedArgs(t, sharded, "--shard", k)...)
		procs, outs = append(procs, p), append(outs, o)
	}
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("embed --shard %d/2: %v\n%s", i, err, outs[i])
		}
		if !strings.Contains(outs[i].String(), ".shard-") || !strings.Contains(outs[i].String(), "the same command with --merge") {
			t.Errorf("embed --shard %d/2 printed:\n%s", i, outs[i])
		}
	}
	out, errOut, err = run(t, embedArgs(t, sharded, "--merge")...)
	if err != nil {
		t.Fatalf("embed --merge: %v\n%s", err, errOut)
	}
	mergedDir := strings.TrimSpace(out)
	if filepath.Base(mergedDir) != filepath.Base(wholeDir) {
		t.Fatalf("merged into %s, the plain embed wrote %s", mergedDir, wholeDir)
	}
	entries, _ := os.ReadDir(sharded)
	if len(entries) != 1 {
		t.Errorf("after the merge %s holds %d entries, want the cache alone", sharded, len(entries))
	}
	names := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if a, b := names(wholeDir), names(mergedDir); !slices.Equal(a, b) {
		t.Fatalf("plain embed wrote %v, the merge %v", a, b)
	}
	for _, name := range names(wholeDir) {
		a, _ := os.ReadFile(filepath.Join(wholeDir, name))
		b, _ := os.ReadFile(filepath.Join(mergedDir, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the merged cache's (%d bytes) differs from the plain embed's (%d bytes)", name, len(b), len(a))
		}
	}
}

// TestEmbedShardBadInput: a shard number out of range, or --shard with --merge, is a usage
// error (exit 2) before any work; a merge with a shard missing, or with a shard of other
// encoder settings in its place, fails (exit 1) naming the shard and the difference.
func TestEmbedShardBadInput(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--shard", "2/2"}, "--shard 2/2: the shard number K must be in 0..1"},
		{[]string{"--shard", "0/0"}, "--shard 0/0: the shard count N must be at least 1"},
		{[]string{"--shard", "1"}, "--shard 1: \"1\" is not K/N"},
		{[]string{"--shard", "0/2", "--merge"}, "--shard 0/2: give --shard K/N to build one shard or --merge to join them, not both"},
	} {
		stderr, code := runMain(t, embedArgs(t, root, c.args...)...)
		if code != 2 || !strings.HasPrefix(stderr, "sentibench: "+c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) > 0 {
		t.Errorf("a refused command line left %d files in %s", len(entries), root)
	}
	if _, errOut, err := run(t, embedArgs(t, root, "--shard", "0/2")...); err != nil {
		t.Fatalf("embed --shard 0/2: %v\n%s", err, errOut)
	}
	if _, errOut, err := run(t, embedArgs(t, root, "--shard", "1/2", "--encoder-layers", "1")...); err != nil {
		t.Fatalf("embed --shard 1/2 --encoder-layers 1: %v\n%s", err, errOut)
	}
	stderr, code := runMain(t, embedArgs(t, root, "--merge")...)
	for _, want := range []string{"sentibench: features: shard 1/2 of the cache ", " is missing (built: 1 of 2)",
		".shard-1-of-2 is shard 1/2 of a cache built with other settings: encoder layers: the cache has the mean of hidden states 1, asked the last hidden state"} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("merge with shard 1/2 of other layers: exit %d, %q; want 1 and %q", code, stderr, want)
		}
	}
}
