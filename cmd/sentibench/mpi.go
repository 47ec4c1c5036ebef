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

// abortRanks ends the whole job when a rank of several fails (other than by an interrupt, at
// which every rank stops together): the others would wait for it in their next allreduce. It
// prints the error first, naming the rank, since MPI_Abort does not return.
func abortRanks(cmd *cobra.Command, comm train.Comm, err error) error {
	if err == nil || comm == nil || comm.Size() == 1 || errors.Is(err, train.ErrInterrupted) {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "sentibench: rank %d of %d: %v\n", comm.Rank(), comm.Size(), err)
	comm.Abort(1)
	return err
}
