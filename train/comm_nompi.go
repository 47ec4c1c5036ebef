//go:build !sentibench_mpi

package train

import (
	"fmt"
	"os"
	"strconv"
)

// MPIBuild says whether this binary was built with MPI (the tag sentibench_mpi).
const MPIBuild = false

// OpenComm returns the one-rank Comm: this build has no MPI. Started by mpirun (or srun) with
// more than one rank, it refuses, rather than training as many copies of the same run.
func OpenComm() (Comm, func() error, error) {
	if what, several := launchedRanks(os.Getenv); several {
		return nil, nil, fmt.Errorf("train: started as one of several MPI ranks (%s), but this sentibench was built without MPI, and each rank would train a copy of the same run: build it with the tag sentibench_mpi (make mpi)", what)
	}
	return SingleComm{}, func() error { return nil }, nil
}

// launchedRanks says whether an MPI launcher (OpenMPI's mpirun, or a PMI or PMIx launcher
// such as Slurm's srun) started this process as one of several ranks, from the variables it
// sets: a size above 1, or a rank above 0 (PMIx sets no size). what names the variable.
func launchedRanks(getenv func(string) string) (what string, several bool) {
	for _, v := range []struct {
		name string
		min  int // the value from which there are several ranks
	}{{"OMPI_COMM_WORLD_SIZE", 2}, {"PMI_SIZE", 2}, {"OMPI_COMM_WORLD_RANK", 1}, {"PMI_RANK", 1}, {"PMIX_RANK", 1}} {
		if n, err := strconv.Atoi(getenv(v.name)); err == nil && n >= v.min {
			return fmt.Sprintf("%s=%d", v.name, n), true
		}
	}
	return "", false
}
