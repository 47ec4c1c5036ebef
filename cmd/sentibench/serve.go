package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/serve"
	"github.com/sentibench/sentibench/train"
)

func newServeCmd() *cobra.Command {
	var (
		run  string
		addr string
		lo   train.LoadOptions
		o    serve.Options
		logs logFlags
	)
	cmd := &cobra.Command{
		Use:   "serve --run RUN_DIR [--addr :8080]",
		Short: "Serve a trained run over HTTP: a web page, a JSON API, health and metrics",
		Long: `Serve a trained run (any model train can load) over HTTP:

  /             a web page: type a text, see its label and the probability of each class
  /v1/predict   POST {"texts": ["...", ...]} or GET ?text=...: per text its label, a
                probability, the predicted class and every class's probability (see below)
  /v1/model     the model's name and classes
  /healthz      200 while the process runs
  /readyz       200 once the model is loaded, 503 while loading and when shutting down
  /metrics      Prometheus text format: requests, latency and batch-size histograms, errors,
                and the Go runtime's and the process's series (go_*, process_*)

Each prediction is {"probability", "label", "class", "probabilities"}: class is the predicted
class and probabilities every class's probability by name, in the run's class order (the
answer's "classes"). A binary sentiment run (classes neg and pos, or any two whose second is
pos, positive, 1 or true) labels a text with the sentiment level of its positive class's
probability (Extremely Negative, Negative, Somewhat Negative, Somewhat Positive, Positive,
Extremely Positive), and probability is that class's. Any other run labels it with the
predicted class; probability is a binary run's second class's, a run of K > 2 classes' the
predicted class's.

The run is loaded and checked before the server listens, so a damaged run fails before
anything listens; only a load that takes more than 2 s (a bigru's encoder) goes on while the
server listens, /readyz answering 503. Concurrent requests are micro-batched into one call of
the model (up to --max-batch texts, waiting at most --batch-wait). SIGTERM or SIGINT shuts
down gracefully: /readyz turns not ready, the server keeps serving for --shutdown-delay, then
stops accepting connections and lets the requests in flight finish.

The log goes to stderr, structured (--log-format text or json): start-up (the model, run,
BLAS, threads, address), each request at the debug level and each failed one at warn
(method, path, status, seconds, texts, request ID), and the shutdown. Every answer carries
an X-Request-ID header: the client's own (1 to 128 printable ASCII characters), or a new one
(16 hex digits) when it sent none; a request whose X-Request-ID is longer, holds other bytes
or is given twice is refused with 400.`,
		Example: `  sentibench serve --run runs/cnn-1
  sentibench serve --run runs/lstm-1 --addr 127.0.0.1:9000 --log-format json --log-level debug
  curl -s localhost:8080/v1/predict -d '{"texts": ["A wonderful, moving film."]}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if run == "" {
				return usageError{"--run RUN_DIR is required"}
			}
			// Load the run (configuration, vocabulary, weights) before opening the socket, so
			// that a damaged or wrong run fails before anything listens. Only a load that
			// takes long (a bigru's encoder, perhaps downloaded) goes on while the server
			// listens: /healthz answers and /readyz says 503 until the model is ready.
			logger, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.Logger = logger
			start := time.Now()
			loaded := make(chan loadResult, 1)
			go func() {
				p, err := train.Load(run, lo)
				loaded <- loadResult{p, err}
			}()
			var model *train.Predictor
			select {
			case r := <-loaded:
				if r.err != nil {
					return r.err
				}
				model = r.p
				logLoaded(logger, model, lo, time.Since(start))
			case <-time.After(loadBeforeListen):
				logger.Info("the model takes long to load: listening meanwhile (/readyz answers 503 until it is loaded)", "run", run)
			case <-cmd.Context().Done():
				return nil
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			s := serve.New(o)
			ctx, cancel := context.WithCancelCause(cmd.Context())
			defer cancel(nil)
			if model != nil {
				if err := s.SetModel(serve.FromPredictor(model)); err != nil {
					ln.Close()
					return err
				}
			} else {
				go func() {
					r := <-loaded
					if r.err == nil {
						logLoaded(logger, r.p, lo, time.Since(start))
						r.err = s.SetModel(serve.FromPredictor(r.p))
					}
					if r.err != nil {
						cancel(r.err)
					}
				}()
			}
			err = s.Run(ctx, ln)
			if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
				return cause // the model failed to load
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&run, "run", "", "the run directory")
	f.StringVar(&addr, "addr", envOr("SENTIBENCH_ADDR", ":8080"), "listen address (host:port; $SENTIBENCH_ADDR sets the default)")
	f.StringVar(&lo.Checkpoint, "checkpoint", "best", "best or last")
	f.IntVar(&lo.Threads, "threads", 0, "worker threads of the model (default: all cores)")
	f.StringVar(&lo.BLAS, "blas", os.Getenv("SENTIBENCH_BLAS"), "CPU BLAS: auto, openblas, go, go-avx2, gonum or a library path (default $SENTIBENCH_BLAS, else auto)")
	f.IntVar(&o.MaxBatch, "max-batch", 64, "most texts per call of the model")
	f.DurationVar(&o.BatchWait, "batch-wait", 2*time.Millisecond, "longest wait for other requests to share a batch")
	f.IntVar(&o.MaxQueue, "max-queue", 1024, "most requests waiting for the model (more get 503)")
	f.Int64Var(&o.MaxBodyBytes, "max-body-bytes", 1<<20, "largest request body")
	f.IntVar(&o.MaxTexts, "max-texts", 256, "most texts per request")
	f.IntVar(&o.MaxTextBytes, "max-text-bytes", 64<<10, "longest text, in bytes")
	f.DurationVar(&o.RequestTimeout, "request-timeout", 10*time.Second, "deadline of one prediction request")
	f.DurationVar(&o.ShutdownDelay, "shutdown-delay", 0, "keep serving this long, not ready, after SIGTERM (let the load balancer notice)")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 25*time.Second, "longest wait for the requests in flight at shutdown")
	logs.add(cmd, true)
	return cmd
}

// logLoaded logs the loaded run: the model, its directory and checkpoint, the BLAS and the
// threads, and how long the load took.
func logLoaded(logger *slog.Logger, p *train.Predictor, lo train.LoadOptions, took time.Duration) {
	threads := lo.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0) // train.Load's default
	}
	checkpoint := lo.Checkpoint
	if checkpoint == "" {
		checkpoint = train.BestDir
	}
	logger.Info("run loaded", "model", p.Name(), "run", p.Dir, "checkpoint", checkpoint,
		"blas", blasName(lo.BLAS), "threads", threads, "go_version", runtime.Version(),
		"version", buildVersion(), "seconds", took.Seconds())
}

// blasName names the BLAS that the choice loads (the library train.Load has loaded already,
// with the threads it set), e.g. "openblas 0.3.21 (Haswell, 2 threads)" or "gonum".
func blasName(choice string) string {
	impl, err := blas.Load(choice)
	if err != nil {
		return "unknown"
	}
	return impl.Name()
}

// loadBeforeListen is how long serve waits for the model to load before it listens anyway (the
// word models load in well under a second; a slow load must not leave /healthz unanswered).
const loadBeforeListen = 2 * time.Second

// loadResult is a run's predictor, or the error of loading it.
type loadResult struct {
	p   *train.Predictor
	err error
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
