// Package bert runs frozen BERT-family encoders (inference only) on the CPU: it loads a Hugging
// Face model directory and computes the last hidden state of every word piece, the features the
// recipe's bigru head reads (see ../../../shared/bench/RECIPE.md, model bigru).
//
// Supported architectures, by config.json's model_type:
//   - "bert": BertModel and checkpoints of its layout (MiniLM such as
//     sentence-transformers/all-MiniLM-L6-v2, bert-base-uncased, ...), tensor names with or
//     without a "bert." prefix; absolute positions; token type 0 for every position.
//   - "distilbert": DistilBertModel (names with or without "distilbert."), learned or sinusoidal
//     positions, no token types.
//
// Anything else (another model_type, a missing tensor, a wrong shape or dtype) is an error naming
// the file and the tensor. Weights come from model.safetensors or, when it is absent, from
// pytorch_model.bin, whose pickle is interpreted by internal/torchbin without running any code.
// The tokenizer (tokenizer.json or vocab.txt) is data.WordPiece.
//
// The forward pass matches transformers in float32 (GELU with erf, layer norm eps from the
// config, the attention mask as an additive float32 minimum). Sequences of a batch are packed
// row after row without padding: the matrix products run over all real tokens of the batch at
// once on the project's BLAS, and attention runs per (sequence, head). Work is split over
// nn.CPU.Workers goroutines (rows for the products, (sequence, head) pairs for attention), each
// calling the BLAS; give the BLAS one thread when Workers > 1. Measured on the project's 2-core
// machine (BenchmarkEncoder), two workers over a one-thread OpenBLAS use the cores better than one
// worker over a two-thread OpenBLAS, whose idle threads spin: start such a process with
// OPENBLAS_NUM_THREADS=1 so that OpenBLAS creates no thread pool at all.
//
// Models may also be named by a Hugging Face hub id: Resolve downloads their files into the cache.
package bert
