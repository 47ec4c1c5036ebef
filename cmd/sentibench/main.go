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
		fmt.Fprintln(os.Stderr, "sentibench:", errorMessage(cmd, err))
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}
