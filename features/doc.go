// Package features computes, once, the frozen encoder's last hidden states for every review and
// keeps them on disk, so that training the recipe's bigru head never runs the encoder again: not
// in the next epoch, not in the next run.
//
// The encoder is frozen (no gradients, eval mode), so its output for a review never changes.
// Build runs it over all reviews and stores the states as float16, one [word piece, hidden]
// block per review, in one file; Open maps that file into memory (syscall.Mmap) and a Reader
// hands out batches as nn.Input values, time-major float32 with zero padding, reading only the
// rows a batch needs: the cache can be far larger than RAM.
//
// A cache is identified by a key: a SHA-256 over the encoder's weights (bert.Model.WeightsHash),
// the tokenizer (data.WordPiece.Fingerprint), the maximum length in word pieces (and the head+tail
// truncation, when one is asked for), and the texts.
// The key names the cache directory and is written in its files; Build reuses a complete cache
// with the same key, resumes an incomplete one, and never reads one with another key.
//
// Building goes in chunks of batches. Each batch holds reviews of similar length (the whole
// corpus sorted by length, longest first); after each chunk the data file is synced and the
// number of complete chunks is recorded atomically, so a build that is interrupted (killed, or
// its context cancelled) continues from the last complete chunk, and the finished file has the
// same bytes as an uninterrupted build with the same settings. Before a long build, Build prints
// the disk space it needs and, after the first batch, an estimate of the time; then progress
// with the time left.
//
// A build can be cut into N shards (BuildShard) that separate processes, on one machine or on
// many sharing the cache root, compute at the same time: shard K takes a contiguous run of the
// whole cache's batches, about a 1/N share of its word pieces, into a directory of its own
// beside the cache's (<cache dir>.shard-K-of-N). Merge checks that all N shards are there,
// complete and of the same key and plan, joins them into the cache an unsharded build writes,
// byte for byte (the same encoder batches, written in the same order; with OpenBLAS, whose
// rounding depends on how a product's rows are split, the shards and that build need the same
// number of encoder workers), and removes them.
//
// The cache root (Options.CacheDir) may also name one cache directory, as Build returns it:
// that cache is used when its key is the one asked for, and refused otherwise with an error
// naming each setting that differs (encoder layers, truncation, weights, texts, ...).
//
// Lengths count word pieces including [CLS] and [SEP], as ../shared/bench/torch_ref.py feeds
// the whole masked sequence to the GRU.
//
// Place in the project: data -> nn -> features -> train. It uses nn (nn.Input, nn.CPU),
// nn/bert (the encoder) and data (the tokenizer, through the encoder); train reads batches.
//
// Files of a cache directory <root>/<model type>-L<layers>-H<hidden>-<key[:16]>/, for example
// bert-L6-H384-<key[:16]> for all-MiniLM-L6-v2:
//
//	meta.json      the key and what it was made of, the sizes, the batching plan (JSON)
//	index.bin      per review: offset (in rows) and length (in word pieces), after a header
//	features.f16   the hidden states, float16 little-endian, rows of Dim values
//	progress.json  how many chunks are complete (atomic writes); all of them when done
//	lock           held (flock) by the process building the cache
//
// A shard directory holds index.bin (the whole cache's), features.f16 (its rows only),
// progress.json (its own chunks), lock, and shard.json: the whole cache's meta.json and the
// shard's batches and rows.
package features
