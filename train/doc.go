// Package train runs the reference recipe end to end: epochs of training with Adam on binary
// cross-entropy (softmax cross-entropy over K logits for data of K > 2 classes), validation
// after each epoch, the best-valid-loss checkpoint, a final test of that checkpoint, and
// checkpoints that a killed run resumes from bit for bit. It also loads a finished run for
// evaluation and prediction, and it owns the run directory's format: nothing else writes or
// parses it.
//
// The classes are the data's label names in the order data.OrderLabels gives them (or
// Config.Labels); the run records them (RunInfo.Labels), and evaluation on other data maps
// that data's labels to them by name. A run of more than two classes adds the class figures
// (macro and per-class precision, recall and F1, the confusion matrix, the MAE of ordinal
// classes) to its epoch and test lines and its run log; a binary run's stay the recipe's.
//
// # At a glance
//
// Training:
//
//	cfg := train.DefaultConfig("cnn")   // the recipe; lstm, cnn or bigru
//	cfg.Data, cfg.RunDir = "sample", "runs/cnn"
//	res, err := train.Run(ctx, cfg, train.Hooks{})   // cancel ctx: a checkpoint, then ErrInterrupted
//	res, err = train.Resume(ctx, "runs/cnn", train.Hooks{})   // after a crash or Ctrl-C
//
// Hooks are observers only (the log, the progress display, a Meter of time and memory, OnEpoch).
// What changes a run's results beyond its Config comes through RunWith and ResumeWith's
// Options: an Objective (another loss and extra training texts: distillation), ResumeOptions
// (threads, a re-test of a finished run), a RunLock the caller already holds, and a Comm: given
// several ranks (MPI under the build tag sentibench_mpi, or LocalComm's goroutines), a run is
// data-parallel: each rank trains on its share of every global batch and the ranks sum their
// gradients before each update; the ranks check at start that they agree (settings, build,
// data, vocabulary, initial weights), only rank 0 writes the run directory, and a checkpoint
// holds every rank's dropout generator, so that a resume on as many ranks goes on bit for bit
// (parallel.go). An error that every rank returns together is a JobError.
//
// Using a finished run:
//
//	p, err := train.Load("runs/cnn", train.LoadOptions{})   // a Predictor
//	cs, err := p.Classify([]string{"A wonderful, moving film."})   // cs[0].Label, cs[0].Probabilities (of p.Classes())
//	probs, err := p.Predict([]string{"A wonderful, moving film."})   // a binary run's positive-class probability
//	m, classes, err := train.Evaluate(ctx, "runs/cnn", train.EvalOptions{Data: "other.tsv"})
//	log, err := train.ReadRunLog("runs/cnn")   // the epochs and the test, typed; log.Finished
//
// # The run directory
//
// config.json (RunInfo: the run's Config, the model's nn.Config, labels in id order, sizes), vocab.txt,
// run.jsonl (one EpochRecord a line, then the FinalRecord), best/ and last/ (weights; last/ also
// the optimiser and generator states), and lock: the flock that LockRun and CreateRun take for a
// run's whole life, holding the writer's process ID, so that two writers never share a
// directory. Readers (Load, Evaluate, ReadRunLog, ReadRunInfo) take no lock. The configuration
// and the checkpoints are written atomically; run.jsonl gets a line per epoch and is rewritten
// atomically from the checkpoint's records when a run resumes, so that it never holds an epoch
// the checkpoint does not.
//
// # Bounds
//
// A run bounds a review's tokens (Config.MaxLen, DefaultMaxLen by default) and refuses a batch
// whose estimated memory (nn.BatchBytes) the machine cannot hold, before allocating it. A
// Config that Run would refuse gives a *ConfigError naming the field (Config.Check).
package train
