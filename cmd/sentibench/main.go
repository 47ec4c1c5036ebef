// Command sentibench trains, evaluates, distils and serves text classifiers (sentiment on IMDB
// first) in Go, on the CPU or on CUDA.
//
// Run `sentibench help` for the commands; each has its own --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/sentibench/sentibench/train"
)

func main() {
	// The trainers' large buffers (the recurrent layers' arena, model and optimiser state) stay
	// live and are reused for the whole run, so Go's default GOGC=100 lets short-lived garbage
	// grow to their size before a collection: an lstm run peaked at 1,064 MiB with 700 MiB
	// live. Collections are cheap here (those buffers hold no pointers), so sentibench collects
	// at 25% growth (920 MiB for the same run) unless GOGC says otherwise.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	train.Version = buildVersion() // recorded in every run directory
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cmd, err := newRootCmd().ExecuteContextC(ctx)
	stop()
	if err != nil {
		var q quietExit
		if errors.As(err, &q) { // another rank of the job reported it
			os.Exit(q.code)
		}
		fmt.Fprintln(os.Stderr, "sentibench:", errorMessage(cmd, err))
		os.Exit(exitCode(err))
	}
}

// exitCode is the process's exit status for a command's error: 2 for a bad command line, the
// code an exitError carries, else 1.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
