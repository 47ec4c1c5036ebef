// Package gpu trains and evaluates sentibench's models on an NVIDIA GPU, on the CUDA driver API
// (gorgonia.org/cu, vendored as internal/cu), cuBLAS, and kernels of its own (kernels.cu,
// compiled ahead of time with nvcc and embedded in the binary).
//
// The GPU code is built only with the tag sentibench_cuda (`make gpu`); without it Open returns
// ErrNoCUDA, and a binary with it on a machine without a usable GPU gets the driver's reason.
//
// # Design: a device-side step executor
//
// On the CPU, nn.Runner builds a Gorgonia graph per batch out of the package nn's fused ops.
// Gorgonia values live in host memory and its tape machine hands them from op to op, so running
// that graph on the GPU would mean either copying between host and device around every op or
// re-implementing Gorgonia's value and memory handling (which its own CUDA VM does poorly: a
// managed-memory slab, a host round trip per gradient, missing ops). Instead, a Trainer is a step
// executor for one nn.Model: it reads the model's architecture (its Config and exported layers)
// and its parameter list (Params, in PyTorch's order), keeps every parameter, gradient, Adam
// moment and activation in device memory for the whole run, and runs each batch as a fixed
// sequence of cuBLAS calls and kernels that mirror the CPU ops' math (the same packed layout,
// the same gate equations, the same order of the sums where it matters). The models are
// untouched; the CPU path is untouched; the parity tests compare the two op by op.
//
// Per step, one copy sends the batch up (the token ids in packed order, the lengths and what is
// derived from them, the targets; the bigru's features), and one copy brings the loss and the
// logits down at the end. The recurrent layers run as: one GEMM for the input projection of the
// whole packed sequence, both directions at once (strided batched), then per time step one
// strided-batched GEMM for the recurrent product of both directions over the rows still active,
// and one fused kernel for the gate arithmetic of both directions; the backward pass mirrors it.
// Nothing waits for the host inside a batch, except with a loss other than binary cross-entropy
// (a K-class model's softmax cross-entropy, distillation's), whose value and gradient are
// computed on the host from the downloaded logits (B x K values).
//
// Dropout masks are drawn on the device from a counter-based hash (see keep), seeded once per
// step from the model's RNG: a run is reproducible from its seed, resumable, but its masks are
// not the CPU's. The embedding's gradient is summed per token id in a fixed order (no atomics),
// so a step gives the same result every time.
//
// # The frozen encoder
//
// Encoder is the bigru's frozen BERT-family encoder (package nn/bert) on the device, inference
// only: the weights stay up for its life; a call lays its sequences out as a padded batch
// [B, T] (callers batch by length), runs every matrix product as one cuBLAS call over the B*T
// rows, attention as two strided-batched products per head over the B sequences around a softmax
// kernel that gives padding keys no weight (as transformers' additive mask does), and the layer
// norms (sums in double, as on the CPU), residuals and activations as kernels; the features come
// back to the host (the feature cache writes them; the recomputing bigru feeds them to the head).
//
// Memory comes from the package's own caching pool (Pool), whose high-water mark is the peak GPU
// memory the profiler reports per epoch (profile.DeviceMemory).
//
// # Building and testing
//
// The tagged build embeds kernels.fatbin, which scripts/build-kernels.sh (`make kernels`, run by
// `make gpu`) compiles from kernels.cu with nvcc; it is not committed. nvcc, cuda.h, cublas_v2.h
// and libcublas come from a CUDA toolkit or from scripts/cuda-toolkit.sh (NVIDIA's PyPI wheels).
//
// The executor (trainer.go, exec.go) is plain Go over a small backend interface, built in every
// build: the CUDA device (cuda.go) is one backend, and the tests' emulator (emu_test.go) another,
// which runs each kernel of kernels.cu as a Go twin over bounds-checked host memory and each GEMM
// by cuBLAS's column-major contract. So the parity of every model's step with the CPU ops, the
// buffer sizes, strides and kernel arguments are tested on every run without a GPU. CI also
// compiles kernels.cu's own source for the CPU (scripts/kernels_host_check.cc: one OS thread per
// CUDA thread, a barrier for __syncthreads) and checks the encoder's kernels against
// double-precision references, which covers what the twins cannot: the kernels' shared-memory
// reductions and grid-stride loops as written. On a GPU,
// gpu_test.go checks the real kernels and cuBLAS the same way (scripts/gpu-check.md). Every
// launch is checked against the kernel's parameter list parsed from the embedded kernels.cu.
package gpu
