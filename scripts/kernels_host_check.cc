// kernels_host_check.cc -- runs the CUDA source of nn/gpu/kernels.cu itself on the CPU, without a
// GPU or nvcc, and checks the frozen encoder's kernels and the kernels with block reductions
// (the loss, the gradient norm) against plain double-precision references. The Go emulator (nn/gpu/emu_test.go) runs Go twins of
// the kernels; this runs the kernels' own code: their indexing, grid-stride loops, shared memory
// and __syncthreads reductions, one OS thread per CUDA thread, blocks one after another.
//
//   g++ -std=c++20 -O1 -pthread -o /tmp/kernels_host_check scripts/kernels_host_check.cc && /tmp/kernels_host_check
//
// scripts/ci-gpu-compile.sh runs it in CI. Exit status 1 on any mismatch.
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <thread>
#include <vector>

// The CUDA built-ins the kernels use, for threads of one block running concurrently.
struct dim3s {
    unsigned x = 0, y = 0, z = 0;
};
static thread_local dim3s threadIdx, blockIdx;
static dim3s blockDim, gridDim;
static std::barrier<> *block_barrier;
static inline void __syncthreads() { block_barrier->arrive_and_wait(); }
using std::max;
using std::min;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static  // one block at a time: a static array is the block's shared memory

#include "../nn/gpu/kernels.cu"

// launch runs kernel(...) on gx x gy blocks of 256 threads.
static void launch(unsigned gx, unsigned gy, const std::function<void()> &kernel) {
    const unsigned threads = 256;
    blockDim = {threads, 1, 1};
    gridDim = {gx, gy, 1};
    for (unsigned by = 0; by < gy; by++) {
        for (unsigned bx = 0; bx < gx; bx++) {
            std::barrier<> bar(threads);
            block_barrier = &bar;
            std::vector<std::thread> ts;
            for (unsigned t = 0; t < threads; t++) {
                ts.emplace_back([&, t] {
                    threadIdx = {t, 0, 0};
                    blockIdx = {bx, by, 0};
                    kernel();
                });
            }
            for (auto &t : ts) t.join();
        }
    }
}

static int failures = 0;

static void check(const char *what, const std::vector<float> &got, const std::vector<double> &want, double tol) {
    double worst = 0;
    for (size_t i = 0; i < got.size(); i++) worst = std::fmax(worst, std::fabs(got[i] - want[i]));
    bool ok = got.size() == want.size() && worst <= tol;
    std::printf("%-40s %zu values, max |diff| %.2g %s\n", what, got.size(), worst, ok ? "ok" : "FAIL");
    if (!ok) failures++;
}

static std::mt19937 rng(12345);
static std::vector<float> randn(size_t n, double scale = 1) {
    std::normal_distribution<double> d(0, scale);
    std::vector<float> v(n);
    for (auto &x : v) x = (float)d(rng);
    return v;
}

// layer norm of a row in double (torch.nn.LayerNorm: biased variance)
static void ref_norm(const std::vector<double> &v, const float *g, const float *b, double eps, double *out) {
    double mean = 0, var = 0;
    for (double x : v) mean += x;
    mean /= v.size();
    for (double x : v) var += (x - mean) * (x - mean);
    var /= v.size();
    for (size_t j = 0; j < v.size(); j++) out[j] = (v[j] - mean) / std::sqrt(var + eps) * g[j] + b[j];
}

int main() {
    const int H = 300;  // wider than a block: each thread takes two columns
    const double eps = 1e-12;
    {  // bert_embed: rows = B*T with T = 3; 7 rows on 3 blocks (grid-stride over rows)
        const int V = 11, T = 3, rows = 7;
        auto word = randn(V * H), pos = randn(T * H), typ = randn(H), g = randn(H, 0.5), b = randn(H, 0.1);
        for (auto &x : g) x += 1;
        std::vector<int> ids = {2, 10, 0, 7, 7, 3, 1};
        std::vector<float> x(rows * H, NAN);
        launch(3, 1, [&] { bert_embed(x.data(), word.data(), pos.data(), typ.data(), g.data(), b.data(), ids.data(), rows, T, H, eps); });
        std::vector<double> want(rows * H);
        for (int r = 0; r < rows; r++) {
            std::vector<double> v(H);
            for (int j = 0; j < H; j++) v[j] = (word[ids[r] * H + j] + typ[j]) + pos[(r % T) * H + j];
            ref_norm(v, g.data(), b.data(), eps, &want[r * H]);
        }
        check("bert_embed", x, want, 2e-5);
    }
    {  // residual_norm, written over its residual input (out == res)
        const int rows = 5;
        auto a = randn(rows * H), res = randn(rows * H), g = randn(H), b = randn(H);
        std::vector<double> want(rows * H);
        for (int r = 0; r < rows; r++) {
            std::vector<double> v(H);
            for (int j = 0; j < H; j++) v[j] = a[r * H + j] + res[r * H + j];
            ref_norm(v, g.data(), b.data(), eps, &want[r * H]);
        }
        launch(2, 1, [&] { residual_norm(res.data(), a.data(), res.data(), g.data(), b.data(), rows, H, eps); });
        check("residual_norm (out = res)", res, want, 2e-5);
    }
    {  // attn_softmax: scores [heads][B][T][T], lengths 5, 3, 1; 30 rows on 4 blocks
        const int heads = 2, B = 3, T = 5;
        std::vector<int> lens = {5, 3, 1};
        const long long rows = (long long)heads * B * T;
        auto s = randn(rows * T, 3);
        std::vector<double> want(rows * T, 0.0);
        for (long long r = 0; r < rows; r++) {
            int L = lens[(r / T) % B];
            double m = -INFINITY, sum = 0;
            for (int j = 0; j < L; j++) m = std::fmax(m, s[r * T + j]);
            for (int j = 0; j < L; j++) sum += std::exp(s[r * T + j] - m);
            for (int j = 0; j < L; j++) want[r * T + j] = std::exp(s[r * T + j] - m) / sum;
        }
        launch(4, 1, [&] { attn_softmax(s.data(), lens.data(), rows, T, B); });
        check("attn_softmax (padding keys 0)", s, want, 1e-6);
    }
    for (int kind = 0; kind < 3; kind++) {  // ffn_act: 1,000 values on 2 blocks of 256 threads
        auto y = randn(1000, 2);
        std::vector<double> want(y.size());
        for (size_t i = 0; i < y.size(); i++) {
            double x = y[i];
            want[i] = kind == 0   ? 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)))
                      : kind == 1 ? 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)))
                                  : std::fmax(x, 0);
        }
        launch(2, 1, [&] { ffn_act(y.data(), (i64)y.size(), kind); });
        const char *names[] = {"ffn_act gelu (erf)", "ffn_act gelu_new (tanh)", "ffn_act relu"};
        check(names[kind], y, want, 2e-6);
    }
    {  // axpby, and the in-place mean (x == y)
        auto y = randn(777), x = randn(777);
        std::vector<double> want(y.size());
        for (size_t i = 0; i < y.size(); i++) want[i] = 0.5 * (1.0 * y[i] + 1.0 * x[i]);
        launch(2, 1, [&] { axpby(y.data(), x.data(), (i64)y.size(), 1.0f, 1.0f); });
        launch(1, 1, [&] { axpby(y.data(), y.data(), (i64)y.size(), 0.5f, 0.0f); });
        check("axpby (sum, then mean in place)", y, want, 1e-6);
    }
    {  // sumsq: block k's partial sum of squares (the gradient norm's reduction)
        auto g = randn(5000);
        const int blocks = 3;
        std::vector<double> part(blocks, NAN);
        launch(blocks, 1, [&] { sumsq(g.data(), (i64)g.size(), part.data()); });
        double got = 0, want = 0;
        for (double p : part) got += p;
        for (float x : g) want += (double)x * x;
        check("sumsq (3 blocks)", std::vector<float>{(float)got}, std::vector<double>{want}, 1e-3);
    }
    {  // bce: one block, 600 examples (more than its 256 threads), loss mean and gradient
        const int n = 600;
        auto z = randn(n, 4);
        std::vector<float> y(n), per(n), dz(n);
        for (int i = 0; i < n; i++) y[i] = (float)(i % 3 == 0);
        double loss = NAN;
        launch(1, 1, [&] { bce(z.data(), y.data(), per.data(), dz.data(), &loss, n); });
        std::vector<double> wantPer(n), wantDz(n);
        double mean = 0;
        for (int i = 0; i < n; i++) {
            double zz = z[i], yy = y[i];
            wantPer[i] = std::fmax(zz, 0) - zz * yy + std::log1p(std::exp(-std::fabs(zz)));
            wantDz[i] = (1 / (1 + std::exp(-zz)) - yy) / n;
            mean += wantPer[i] / n;
        }
        check("bce per-example loss", per, wantPer, 1e-6);
        check("bce gradient", dz, wantDz, 1e-9);
        check("bce mean loss", std::vector<float>{(float)loss}, std::vector<double>{mean}, 1e-6);
    }
    if (failures) {
        std::printf("kernels_host_check: %d FAILED\n", failures);
        return 1;
    }
    std::printf("kernels_host_check: all kernels match\n");
    return 0;
}
