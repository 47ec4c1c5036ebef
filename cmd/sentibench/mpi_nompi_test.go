//go:build !sentibench_mpi

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainRefusesMPIWithoutTheTag: a build without MPI, started by mpirun as one of two ranks
// (OMPI_COMM_WORLD_SIZE=2, as mpirun sets it; or a rank > 0 under PMIx), refuses with an error
// naming the build tag, and writes no run directory, instead of training two copies of the run.
func TestTrainRefusesMPIWithoutTheTag(t *testing.T) {
	for _, env := range [][2]string{{"OMPI_COMM_WORLD_SIZE", "2"}, {"PMIX_RANK", "1"}} {
		t.Run(env[0], func(t *testing.T) {
			t.Setenv(env[0], env[1])
			dir := filepath.Join(t.TempDir(), "run")
			_, _, err := runCmd("train", "--model", "cnn", "--data", "sample", "--limit", "20", "--epochs", "1", "--run", dir, "--progress", "quiet")
			if err == nil || !strings.Contains(err.Error(), "sentibench_mpi") || !strings.Contains(err.Error(), env[0]+"="+env[1]) {
				t.Fatalf("error %v, want one naming the build tag sentibench_mpi and %s=%s", err, env[0], env[1])
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the run directory was made (stat: %v)", err)
			}
		})
	}
}

// TestDistillRefusesMPIWithoutTheTag: distill too refuses to run as one of several ranks
// without MPI, naming the build tag, and writes no run directory.
func TestDistillRefusesMPIWithoutTheTag(t *testing.T) {
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	dir := filepath.Join(t.TempDir(), "run")
	_, _, err := runCmd("distill", "--teacher", t.TempDir(), "--student", "cnn", "--run", dir, "--progress", "quiet")
	if err == nil || !strings.Contains(err.Error(), "sentibench_mpi") {
		t.Fatalf("error %v, want one naming the build tag sentibench_mpi", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the run directory was made (stat: %v)", err)
	}
}
