// Package train runs the reference recipe end to end: epochs of training with Adam on binary
// cross-entropy, validation after each epoch, the best-valid-loss checkpoint, a final test of
// that checkpoint, and checkpoints that a killed run resumes from bit for bit. It also loads a
// finished run for evaluation and prediction. A run bounds a review's tokens (Config.MaxLen,
// DefaultMaxLen by default) and refuses a batch whose estimated memory (nn.BatchBytes) the
// machine cannot hold, before allocating it. Given a Comm of several ranks (Options.Comm: MPI
// under the build tag sentibench_mpi, or LocalComm's goroutines), a run is data-parallel: each
// rank trains on its share of every global batch and the ranks sum their gradients before
// each update (parallel.go).
package train
