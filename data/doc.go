// Package data reads, tokenizes, splits and batches the text-classification data sets that
// sentibench trains on, IMDB first, exactly as ../shared/bench/RECIPE.md (the reference recipe)
// defines it, so that a run here and a run of the PyTorch reference (torch_ref.py) see the same
// examples in the same order: the split and the vocabulary are checked to be identical, entry
// for entry, to those torch_ref.py writes (parity_test.go).
//
// The pipeline, as the trainer uses it:
//
//	path, err := data.Resolve(ctx, data.Locator{Path: flagData, Env: data.EnvFrom(os.Getenv)})
//	c, err := data.Load(ctx, data.Options{Path: path, Seed: data.DefaultSeed})
//	vocab, ids, err := data.WordData(ctx, c, data.BasicEnglish{}, data.DefaultMaxWords, 0)
//	lengths := data.Lengths(ids)
//	labels := c.Labels()
//	rng := c.RNG                     // the generator after the split; checkpoint rng.State
//	for epoch := range epochs {
//		for _, b := range data.BucketBatches(c.Train, lengths, 64, &rng) {
//			batch = data.Pad(batch, ids, labels, b, data.PadOptions{PadID: data.PAD, MinLen: 5})
//			... // batch.IDs is B x T, row-major; batch.Lengths; batch.Labels
//		}
//		for _, b := range data.EvalBatches(c.Valid, lengths, 64) { ... }
//	}
//
// Pieces:
//   - Resolve finds the data: the --data flag, then $SENTIBENCH_DATA, then the cached download,
//     then a download of the official archive (resumable, verified by SHA-256; internal/fetch).
//     "sample" selects a sample of 3,000 real reviews embedded in the binary.
//   - Load reads the official archive as a stream (gzip + tar, nothing unpacked), an aclImdb
//     directory, the unlabelled reviews on request, or own data (CSV, TSV, JSONL, a
//     folder-per-label directory), applies --limit, and makes the recipe's train/valid split
//     with SplitMix64 (or, with Options.AsGiven, keeps the data's own parts, for evaluation);
//     Corpus holds the examples, the label names, the split and the generator.
//   - The classes (labels.go) are the data's label names in id order: Options.Labels
//     (--labels) when given, else numbers numerically, else byte-wise, with binary data's
//     positive class (pos, positive, 1, true) second; at most MaxClasses. IMDB's Target
//     labels its reviews by sentiment (neg, pos), star rating or four rating levels, with the
//     same reviews in each part of the split.
//   - Tokenizer is the interface of tokenizers; BasicEnglish is the recipe's, a hand-written
//     scanner with Python's semantics (tokenize.go). TokenizeAll runs one over a corpus in
//     parallel; BuildVocab and Vocab make and store the 25,002-token vocabulary.
//   - BucketBatches, EvalBatches and Pad make the recipe's batches.
//
// It is the bottom of the project's packages (data -> nn -> train -> distill/profile -> cmd):
// it imports none of them.
package data
