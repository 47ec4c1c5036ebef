//go:build sentibench_mpi

package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// mainEnv makes the test binary run sentibench's main on its arguments: the process that
// mpirun starts twice.
const mainEnv = "SENTIBENCH_TEST_MAIN"

func init() {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
}

// TestMPIRunMatchesOneRank runs `sentibench train` (this MPI build) under a real
// `mpirun -np 2` on the sample, dropout 0, and requires the figures of the same run as one
// process within float32 summation error (1e-5 relative on the losses; the same accuracies).
func TestMPIRunMatchesOneRank(t *testing.T) {
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("no mpirun (apt-get install openmpi-bin libopenmpi-dev)")
	}
	args := []string{"train", "--model", "cnn", "--data", "sample", "--limit", "200", "--epochs", "1", "--dropout", "0", "--progress", "quiet", "--threads", "1"}
	base := t.TempDir()
	run := func(dir string, launcher ...string) (train.RunLog, string) {
		t.Helper()
		argv := append(append(launcher, os.Args[0]), append(args, "--run", dir)...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), mainEnv+"=1", "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
		out, err := cmd.CombinedOutput()
		t.Logf("%v:\n%s", argv, out)
		if err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
		rl, err := train.ReadRunLog(dir)
		if err != nil {
			t.Fatal(err)
		}
		return rl, string(out)
	}
	want, _ := run(filepath.Join(base, "one"))
	got, out := run(filepath.Join(base, "two"), mpirun, "--oversubscribe", "-np", "2")
	if !strings.Contains(out, "Data-parallel: 2 ranks") || strings.Count(out, "Epoch: 01") != 1 {
		t.Errorf("mpirun -np 2: want one report, of 2 ranks")
	}
	if !got.Finished || len(got.Epochs) != len(want.Epochs) {
		t.Fatalf("2 ranks: %d epochs (finished %v), want %d", len(got.Epochs), got.Finished, len(want.Epochs))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(math.Abs(a), math.Abs(b)) }
	for i, w := range want.Epochs {
		g := got.Epochs[i]
		if !near(w.TrainLoss, g.TrainLoss) || !near(w.ValidLoss, g.ValidLoss) || w.TrainAcc != g.TrainAcc || w.ValidAcc != g.ValidAcc || w.Tokens != g.Tokens {
			t.Errorf("epoch %d: 2 ranks train %v/%v valid %v/%v tokens %d, 1 rank %v/%v %v/%v %d", w.Epoch,
				g.TrainLoss, g.TrainAcc, g.ValidLoss, g.ValidAcc, g.Tokens, w.TrainLoss, w.TrainAcc, w.ValidLoss, w.ValidAcc, w.Tokens)
		}
	}
	if !near(want.Final.TestLoss, got.Final.TestLoss) || want.Final.TestAcc != got.Final.TestAcc {
		t.Errorf("test: 2 ranks %v/%v, 1 rank %v/%v", got.Final.TestLoss, got.Final.TestAcc, want.Final.TestLoss, want.Final.TestAcc)
	}
}
