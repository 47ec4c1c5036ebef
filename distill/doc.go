// Package distill trains a small student model from a trained teacher run: the teacher's logits
// over a transfer set are computed once and cached, and the student learns from a mix of the
// hard labels and the teacher's temperature-softened outputs (Hinton et al. 2015) or from the
// teacher's logits directly (Tang et al. 2019).
package distill
