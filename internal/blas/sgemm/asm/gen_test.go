package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate regenerates the kernels into a temporary directory and checks that the
// committed ../kernel_amd64.s and ../kernel_amd64_stubs.go are what this generator writes (the
// first line, naming the command's arguments, aside). Run it with `go test` in this directory.
func TestGeneratedUpToDate(t *testing.T) {
	dir := t.TempDir()
	out, stubs := filepath.Join(dir, "kernel_amd64.s"), filepath.Join(dir, "kernel_amd64_stubs.go")
	cmd := exec.Command("go", "run", ".", "-out", out, "-stubs", stubs, "-pkg", "sgemm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run .: %v\n%s", err, msg)
	}
	for _, pair := range [][2]string{{out, "../kernel_amd64.s"}, {stubs, "../kernel_amd64_stubs.go"}} {
		fresh, err := os.ReadFile(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(afterFirstLine(fresh), afterFirstLine(committed)) {
			t.Errorf("%s is not what gen.go writes: run `go generate ./internal/blas/sgemm/` and commit it", pair[1])
		}
	}
}

func afterFirstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}
