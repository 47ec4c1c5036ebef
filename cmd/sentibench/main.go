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
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "sentibench:", err)
			os.Exit(2)
		}
		var ee exitError
		if errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "sentibench:", err)
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "sentibench:", err)
		os.Exit(1)
	}
}
