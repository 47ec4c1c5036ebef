//go:build !sentibench_mpi

package train

import (
	"fmt"
	"os"
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
