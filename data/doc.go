// Package data reads, tokenizes, splits and batches the text-classification data sets that
// sentibench trains on, IMDB first, exactly as ../shared/bench/RECIPE.md (the reference recipe)
// defines it, so that a run here and a run of the PyTorch reference see the same examples in
// the same order.
//
// It is the bottom of the project's packages (data -> nn -> train -> distill/profile -> cmd):
// it imports none of them.
package data
