// Package cu is the CUDA driver API for Go: the root package of gorgonia.org/cu v0.9.6
// (Apache License 2.0, LICENSE and CONTRIBUTORS.md beside this file), patched for CUDA 13 and
// so that a binary linking it starts on a machine without a GPU (README.sentibench.md lists every
// change).
//
// Every other file of the package is behind the build tag sentibench_cuda, so the default build
// compiles this file only: it needs no CUDA headers and works with CGO_ENABLED=0. sentibench's
// GPU code (package nn/gpu, same tag) is its only user.
package cu
