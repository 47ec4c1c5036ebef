//go:build race

package wordvec_test

// raceDetector is true under `go test -race`: Hogwild training races on purpose (as word2vec's C
// code does), so the tests of several threads skip there.
const raceDetector = true
