// Package nn is sentibench's neural core: parameters, layers, the fused heavy ops (LSTM, GRU,
// text CNN) with hand-written backward passes, losses, the Adam optimiser, and the recipe's
// models (lstm, cnn, bigru head) assembled from them.
//
// Gorgonia holds the graph and the automatic differentiation. A model adds its computation for
// one batch to a fresh gorgonia.ExprGraph (Model.Forward); the graph is small (tens of nodes),
// so building and compiling it per batch costs about a millisecond, and batches of any shape
// need no padding to a fixed size. The heavy layers are single graph nodes (fused custom ops)
// whose forward and backward passes run on a real BLAS and keep their work buffers across
// steps; the light parts (adds, concatenation, reshapes) are Gorgonia's own ops.
//
// Weights are plain float32 slices named and shaped as PyTorch names and shapes them
// (weight_ih_l0, weight_hh_l0_reverse, ...), so a model's weights move to and from PyTorch
// unchanged (see the safetensors checkpoints of package train).
//
// Data flows one way through the project: data -> nn -> train -> distill/profile/serve -> cmd.
// This package imports none of them: a batch comes in as an Input (token ids and lengths),
// which train fills from package data; of the project, nn imports only internal/blas and
// internal/safetensors.
package nn
