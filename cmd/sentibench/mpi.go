package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/train"
)

// openRanks joins the data-parallel job that mpirun started (the MPI build), or returns the
// one-rank Comm; a build without MPI started as one of several ranks refuses. On a rank other
// than 0 the hooks print nothing: rank 0 reports for all.
func openRanks(hooks *train.Hooks) (train.Comm, func() error, error) {
	comm, closeComm, err := train.OpenComm()
	if err != nil {
		return nil, nil, err
	}
	if comm.Rank() != 0 {
		hooks.Log, hooks.Progress, hooks.ProgressMode, hooks.OnEpoch = io.Discard, io.Discard, progress.Quiet, nil
	}
	return comm, closeComm, nil
}

// abortRanks is what a rank of a job returns for its run's error err, shown to the user as
// shown (the command's form of err). When a rank of several fails alone (other than by an
// interrupt, at which every rank stops together), it ends the whole job, since the others would
// wait for it in their next allreduce: it prints the error first, naming the rank, since
// MPI_Abort does not return. An error that every rank returned together (train.JobError) ends
// no job: rank 0 reports it and the other ranks exit with its code, quietly.
func abortRanks(cmd *cobra.Command, comm train.Comm, err, shown error) error {
	if err == nil || comm == nil || comm.Size() == 1 || errors.Is(err, train.ErrInterrupted) {
		return shown
	}
	if train.IsJobError(err) {
		if comm.Rank() != 0 {
			return quietExit{code: exitCode(shown)}
		}
		return shown
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "sentibench: rank %d of %d: %v\n", comm.Rank(), comm.Size(), shown)
	comm.Abort(1)
	return shown
}

// quietExit ends the process with code without printing an error (another rank reports it).
type quietExit struct{ code int }

func (q quietExit) Error() string { return fmt.Sprintf("exit %d", q.code) }
