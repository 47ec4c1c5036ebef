//go:build !race

package wordvec_test

const raceDetector = false
