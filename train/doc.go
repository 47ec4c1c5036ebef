// Package train runs the reference recipe end to end: epochs of training with Adam on binary
// cross-entropy, validation after each epoch, the best-valid-loss checkpoint, a final test of
// that checkpoint, and checkpoints that a killed run resumes from bit for bit. It also loads a
// finished run for evaluation and prediction. A run bounds a review's tokens (Config.MaxLen,
// DefaultMaxLen by default) and refuses a batch whose estimated memory (nn.BatchBytes) the
// machine cannot hold, before allocating it.
package train
