// kernels.cu: sentibench's CUDA kernels (package nn/gpu). Compiled ahead of time with nvcc into
// kernels.fatbin (make kernels; see scripts/build-kernels.sh) and embedded in the binary.
//
// Each kernel mirrors a piece of the CPU ops of package nn; the comment names it. Matrices are
// row-major. Element-wise kernels use grid-stride loops over 1-D grids of 256-thread blocks.
// The recurrent cell kernels run both directions of a layer in one launch: blockIdx.y is the
// direction, and each direction's buffers are one stride apart.

#include <stdint.h>

typedef long long i64;
typedef unsigned long long u64;

#define GRID_STRIDE(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---------------------------------------------------------------------------- dropout

// SplitMix64's output function; keep() is the Go function of the same name (plan.go).
__device__ __forceinline__ u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ bool keep(u64 seed, i64 i, unsigned thr) {
    return (unsigned)(mix64(seed + (u64)(i + 1) * 0x9E3779B97F4A7C15ull) >> 32) >= thr;
}

// y = x * mask * scale (nn.Dropout, the recurrent layers' dropout between layers). y may be x.
// The backward pass is the same call on the gradient with the same seed.
extern "C" __global__ void dropout(float *y, const float *x, i64 n, u64 seed, unsigned thr, float scale) {
    GRID_STRIDE(i, n) { y[i] = keep(seed, i, thr) ? x[i] * scale : 0.0f; }
}

// keep_mask writes the mask as 0/1 (tests compare it with the Go function).
extern "C" __global__ void keep_mask(float *y, i64 n, u64 seed, unsigned thr) {
    GRID_STRIDE(i, n) { y[i] = keep(seed, i, thr) ? 1.0f : 0.0f; }
}

// ---------------------------------------------------------------------------- embedding

// out[r] = table[ids[r]] for n rows of width E (nn.Embedding's forward).
extern "C" __global__ void embed_gather(float *out, const float *table, const int *ids, i64 n, int E) {
    GRID_STRIDE(i, n * E) {
        i64 r = i / E;
        int e = (int)(i - r * E);
        out[i] = table[(i64)ids[r] * E + e];
    }
}

// The embedding's gradient (nn.Embedding's backward): for each distinct id uniq[u], the sum of
// the output-gradient rows rows[start[u]..start[u+1]) in that order. The table's gradient is
// zeroed before; the ids' rows are overwritten.
extern "C" __global__ void embed_grad(float *dtable, const float *dout, const int *uniq, const int *start,
                                      const int *rows, int nuniq, int E) {
    GRID_STRIDE(i, (i64)nuniq * E) {
        int u = (int)(i / E);
        int e = (int)(i - (i64)u * E);
        float s = 0.0f;
        for (int k = start[u]; k < start[u + 1]; k++) s += dout[(i64)rows[k] * E + e];
        dtable[(i64)uniq[u] * E + e] = s;
    }
}

// ---------------------------------------------------------------------------- recurrent layers
//
// Buffers of one layer (D directions, N packed rows, B sequences, H hidden, G gates of H):
//   gates  [D][N][G*H]  input projection, then activations, then (backward) gate gradients
//   aux    [D][N][H]    LSTM: cell states c; GRU: W_hn h + b_hn, then (backward) dn
//   rec    [D][B][G*H]  recurrent product of the current step (dense rows 0..B)
//   hs, cs [D][B][H]    the state of each sequence (dense; zero before a sequence starts)
//   hcat   [N][D*H]     the layer's output, directions side by side
// Step t of direction d has its rows at packed rows row_d..row_d+n_d; the host passes them.

struct Dir {
    int row, n;   // first packed row of the step, active sequences
    int prow, m;  // first packed row of the previous step, sequences continuing from it
    int cont;     // backward: rows receiving a recurrent gradient from the step done before
};

// The two directions' Dir travel as ten int parameters (the Go side passes 8-byte slots).
#define DIR_PARAMS int row0, int n0, int prow0, int m0, int cont0, int row1, int n1, int prow1, int m1, int cont1
#define DIR_SELECT(d) ((d) ? Dir{row1, n1, prow1, m1, cont1} : Dir{row0, n0, prow0, m0, cont0})

// LSTM forward cell (nn lstmCellForward): gates i, f, g, o.
extern "C" __global__ void lstm_fwd_cell(float *gates, i64 gstride, const float *rec, i64 rstride,
                                         const float *bih, const float *bhh, i64 pstride,
                                         float *aux, i64 astride, float *cs, float *hs, float *hcat,
                                         int H, int B, int W, DIR_PARAMS) {
    int d = blockIdx.y;
    Dir s = DIR_SELECT(d);
    GRID_STRIDE(i, (i64)s.n * H) {
        int b = (int)(i / H), j = (int)(i - (i64)b * H);
        int G = 4 * H;
        float *g = gates + d * gstride + (i64)(s.row + b) * G;
        const float *r = rec + d * rstride + (i64)b * G;
        const float *bi = bih + d * pstride, *bh = bhh + d * pstride;
        float gi = sigmoidf((g[j] + r[j]) + (bi[j] + bh[j]));
        float gf = sigmoidf((g[H + j] + r[H + j]) + (bi[H + j] + bh[H + j]));
        float gg = tanhf((g[2 * H + j] + r[2 * H + j]) + (bi[2 * H + j] + bh[2 * H + j]));
        float go = sigmoidf((g[3 * H + j] + r[3 * H + j]) + (bi[3 * H + j] + bh[3 * H + j]));
        g[j] = gi; g[H + j] = gf; g[2 * H + j] = gg; g[3 * H + j] = go;
        i64 st = (i64)d * B * H + (i64)b * H + j;
        float c = gf * cs[st] + gi * gg;
        float h = go * tanhf(c);
        aux[d * astride + (i64)(s.row + b) * H + j] = c;
        cs[st] = c;
        hs[st] = h;
        hcat[(i64)(s.row + b) * W + d * H + j] = h;
    }
}

// LSTM backward cell (nn lstmCellBackward). dH [N][D*H] is the gradient of the layer's output;
// dprev [D][B][H] the recurrent gradient of the rows that continue (b < cont); carry [D][B][H]
// the cell-state gradient. The gate gradients replace the activations in gates and go to the
// dense dg [D][B][G*H] for the recurrent product.
extern "C" __global__ void lstm_bwd_cell(float *gates, i64 gstride, const float *aux, i64 astride,
                                         const float *dH, const float *dprev, float *carry, float *dg,
                                         int H, int B, int W, DIR_PARAMS) {
    int d = blockIdx.y;
    Dir s = DIR_SELECT(d);
    GRID_STRIDE(i, (i64)s.n * H) {
        int b = (int)(i / H), j = (int)(i - (i64)b * H);
        int G = 4 * H;
        i64 row = s.row + b;
        i64 st = (i64)d * B * H + (i64)b * H + j;
        float *g = gates + d * gstride + row * G;
        float gi = g[j], gf = g[H + j], gg = g[2 * H + j], go = g[3 * H + j];
        float c = aux[d * astride + row * H + j];
        float tc = tanhf(c);
        float dh = dH[row * W + d * H + j];
        float dc = 0.0f;
        if (b < s.cont) {
            dh += dprev[st];
            dc = carry[st];
        }
        float dcv = dc + dh * go * (1.0f - tc * tc);
        float ri = dcv * gg * gi * (1.0f - gi);
        float rf = 0.0f;
        if (b < s.m) rf = dcv * aux[d * astride + (i64)(s.prow + b) * H + j] * gf * (1.0f - gf);
        float rg = dcv * gi * (1.0f - gg * gg);
        float ro = dh * tc * go * (1.0f - go);
        g[j] = ri; g[H + j] = rf; g[2 * H + j] = rg; g[3 * H + j] = ro;
        float *q = dg + (i64)d * B * G + (i64)b * G;
        q[j] = ri; q[H + j] = rf; q[2 * H + j] = rg; q[3 * H + j] = ro;
        carry[st] = dcv * gf;
    }
}

// GRU forward cell (nn gruCellForward): gates r, z, n; aux keeps W_hn h + b_hn.
extern "C" __global__ void gru_fwd_cell(float *gates, i64 gstride, const float *rec, i64 rstride,
                                        const float *bih, const float *bhh, i64 pstride,
                                        float *aux, i64 astride, float *hs, float *hcat,
                                        int H, int B, int W, DIR_PARAMS) {
    int d = blockIdx.y;
    Dir s = DIR_SELECT(d);
    GRID_STRIDE(i, (i64)s.n * H) {
        int b = (int)(i / H), j = (int)(i - (i64)b * H);
        int G = 3 * H;
        float *g = gates + d * gstride + (i64)(s.row + b) * G;
        const float *r = rec + d * rstride + (i64)b * G;
        const float *bi = bih + d * pstride, *bh = bhh + d * pstride;
        float gr = sigmoidf(g[j] + ((bi[j] + bh[j]) + r[j]));
        float gz = sigmoidf(g[H + j] + ((bi[H + j] + bh[H + j]) + r[H + j]));
        float hn = r[2 * H + j] + bh[2 * H + j];
        float gn = tanhf(g[2 * H + j] + (bi[2 * H + j] + gr * hn));
        i64 st = (i64)d * B * H + (i64)b * H + j;
        float h = (1.0f - gz) * gn + gz * hs[st];
        g[j] = gr; g[H + j] = gz; g[2 * H + j] = gn;
        aux[d * astride + (i64)(s.row + b) * H + j] = hn;
        hs[st] = h;
        hcat[(i64)(s.row + b) * W + d * H + j] = h;
    }
}

// GRU backward cell (nn gruCellBackward). gates become [dr, dz, dn*r] (what W_hh and b_hh see),
// aux becomes dn; dprev [D][B][H] gets the direct part dh*z of the previous state's gradient
// (the recurrent product is added to it next, beta = 1).
extern "C" __global__ void gru_bwd_cell(float *gates, i64 gstride, float *aux, i64 astride,
                                        const float *hcat, const float *dH, float *dprev, float *dg,
                                        int H, int B, int W, DIR_PARAMS) {
    int d = blockIdx.y;
    Dir s = DIR_SELECT(d);
    GRID_STRIDE(i, (i64)s.n * H) {
        int b = (int)(i / H), j = (int)(i - (i64)b * H);
        int G = 3 * H;
        i64 row = s.row + b;
        i64 st = (i64)d * B * H + (i64)b * H + j;
        float *g = gates + d * gstride + row * G;
        float rv = g[j], zv = g[H + j], nv = g[2 * H + j];
        float hn = aux[d * astride + row * H + j];
        float dh = dH[row * W + d * H + j];
        if (b < s.cont) dh += dprev[st];
        float hp = 0.0f;
        if (b < s.m) hp = hcat[(i64)(s.prow + b) * W + d * H + j];
        float dnp = dh * (1.0f - zv) * (1.0f - nv * nv);
        float dr = dnp * hn * rv * (1.0f - rv);
        float dz = dh * (hp - nv) * zv * (1.0f - zv);
        float dn = dnp * rv;
        g[j] = dr; g[H + j] = dz; g[2 * H + j] = dn;
        float *q = dg + (i64)d * B * G + (i64)b * G;
        q[j] = dr; q[H + j] = dz; q[2 * H + j] = dn;
        aux[d * astride + row * H + j] = dnp;
        dprev[st] = b < s.m ? dh * zv : 0.0f;
    }
}

// hprev [D][N][H]: for each packed row, direction d's hidden state of the step before it (zero
// where the sequence starts), for the W_hh gradient (nn alignPrev).
extern "C" __global__ void rnn_align_prev(float *hprev, const float *hcat, const int *rowT, const int *nb,
                                          const int *off, int N, int T, int H, int W, int D) {
    GRID_STRIDE(i, (i64)D * N * H) {
        int d = (int)(i / ((i64)N * H));
        i64 rem = i - (i64)d * N * H;
        int r = (int)(rem / H), j = (int)(rem - (i64)r * H);
        int t = rowT[r], b = r - off[t];
        float v = 0.0f;
        if (d == 0) {
            if (t > 0) v = hcat[(i64)(off[t - 1] + b) * W + j];
        } else if (t + 1 < T && b < nb[t + 1]) {
            v = hcat[(i64)(off[t + 1] + b) * W + H + j];
        }
        hprev[i] = v;
    }
}

// The last layer's final states, out [B][D*H] = [hs forward | hs reverse] (nn rnnFinalOp).
extern "C" __global__ void rnn_final(float *out, const float *hs, int B, int H, int D) {
    GRID_STRIDE(i, (i64)D * B * H) {
        int d = (int)(i / ((i64)B * H));
        i64 rem = i - (i64)d * B * H;
        int b = (int)(rem / H), j = (int)(rem - (i64)b * H);
        out[(i64)b * D * H + d * H + j] = hs[i];
    }
}

// The final states' gradient into the (zeroed) layer-output gradient dH [N][D*H]: the forward
// half at each sequence's last row, the reverse half at its row of step 0 (packed row b).
extern "C" __global__ void rnn_final_bwd(float *dH, const float *dout, const int *last, int B, int H, int D) {
    GRID_STRIDE(i, (i64)D * B * H) {
        int d = (int)(i / ((i64)B * H));
        i64 rem = i - (i64)d * B * H;
        int b = (int)(rem / H), j = (int)(rem - (i64)b * H);
        i64 row = d == 0 ? last[b] : b;
        dH[row * D * H + d * H + j] = dout[(i64)b * D * H + d * H + j];
    }
}

// ---------------------------------------------------------------------------- linear, loss

// y[r] = b for rows r of width n (the linear layer's bias, before y += x W^T).
extern "C" __global__ void bias_rows(float *y, const float *b, i64 rows, int n) {
    GRID_STRIDE(i, rows * n) { y[i] = b[i % n]; }
}

// Binary cross-entropy with logits, mean over n (nn BCEWithLogits), in one block: per-example
// losses, the gradient (sigmoid(z) - y) / n, and the mean in double, summed in a fixed order.
extern "C" __global__ void bce(const float *z, const float *y, float *per, float *dz, double *loss, int n) {
    __shared__ double part[256];
    double sum = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        double zz = z[i], yy = y[i];
        double l = fmax(zz, 0.0) - zz * yy + log1p(exp(-fabs(zz)));
        double s;
        if (zz >= 0) {
            s = 1.0 / (1.0 + exp(-zz));
        } else {
            double e = exp(zz);
            s = e / (1.0 + e);
        }
        per[i] = (float)l;
        dz[i] = (float)((s - yy) * (1.0 / n));
        sum += l;
    }
    part[threadIdx.x] = sum;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) loss[0] = part[0] / n;
}

// ---------------------------------------------------------------------------- optimiser

// Adam, as nn adamKernel.update (torch.optim.Adam's single-tensor path), with the gradient scaled
// by *clip first (1 when the norm is within bounds).
extern "C" __global__ void adam(float *w, const float *g, float *m, float *v, i64 n, float w1, float b2,
                                float w2, float eps, float wd, float negStep, float bc2sqrt, const float *clip) {
    float c = *clip;
    GRID_STRIDE(i, n) {
        float gi = g[i] * c;
        if (wd != 0.0f) gi += wd * w[i];
        float mi = m[i] + w1 * (gi - m[i]);
        float vi = v[i] * b2 + w2 * gi * gi;
        float den = sqrtf(vi) / bc2sqrt + eps;
        m[i] = mi;
        v[i] = vi;
        w[i] += negStep * mi / den;
    }
}

// Partial sums of squares for the gradient norm: block k of the launch writes out[k], in a fixed
// order (gridDim.x blocks of 256 threads).
extern "C" __global__ void sumsq(const float *g, i64 n, double *out) {
    __shared__ double part[256];
    double s = 0.0;
    GRID_STRIDE(i, n) {
        double x = g[i];
        s += x * x;
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}

// The clipping coefficient (nn ClipGradNorm): norm = sqrt(sum of the partials), coefficient
// maxNorm / (norm + 1e-6) when below 1, else 1. One thread.
extern "C" __global__ void clip_coef(const double *partials, int count, double maxNorm, float *coef, double *norm) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double s = 0.0;
    for (int i = 0; i < count; i++) s += partials[i];
    double nrm = sqrt(s);
    double c = maxNorm / (nrm + 1e-6);
    *coef = c < 1.0 ? (float)c : 1.0f;
    *norm = nrm;
}

// ---------------------------------------------------------------------------- text CNN
// nn/textcnn.go: x is batch-major [B*T][E]; width w's weights W [F][E][w] are used as
// wf [F][w*E] (wf[f][k*E+e] = W[f][e][k]), so that tap k of every window is a plain GEMM.

extern "C" __global__ void cnn_pack_weights(float *wf, const float *W, int F, int E, int w) {
    GRID_STRIDE(i, (i64)F * E * w) {
        int f = (int)(i / ((i64)E * w));
        int rem = (int)(i - (i64)f * E * w);
        int e = rem / w, k = rem - e * w;
        wf[(i64)f * w * E + k * E + e] = W[i];
    }
}

// Max over time of width w's responses conv [B*T][nWF] (columns col0..col0+F), within each
// sequence's max(len, minLen) - w + 1 windows; first maximum on ties; then bias and ReLU.
extern "C" __global__ void cnn_pool(float *out, int *arg, const float *conv, const float *bias, const int *lengths,
                                    int B, int T, int F, int nWF, int col0, int w, int minLen) {
    GRID_STRIDE(i, (i64)B * F) {
        int b = (int)(i / F), f = (int)(i - (i64)b * F);
        int windows = max(lengths[b], minLen) - w + 1;
        float best = -INFINITY;
        int a = -1;
        for (int t = 0; t < windows; t++) {
            float v = conv[((i64)b * T + t) * nWF + col0 + f];
            if (v > best) {
                best = v;
                a = t;
            }
        }
        out[(i64)b * nWF + col0 + f] = fmaxf(best + bias[f], 0.0f);
        arg[(i64)b * nWF + col0 + f] = a;
    }
}

// Bias gradient of width w's filters: the output gradient where the pooled output is positive.
extern "C" __global__ void cnn_bias_grad(float *db, const float *dy, const float *out, int B, int F, int nWF, int col0) {
    GRID_STRIDE(f, (i64)F) {
        float s = 0.0f;
        for (int b = 0; b < B; b++) {
            i64 j = (i64)b * nWF + col0 + f;
            float g = dy[j];
            if (out[j] > 0.0f && g != 0.0f) s += g;
        }
        db[f] = s;
    }
}

// Weight gradient of width w, written in PyTorch's layout dW [F][E][w]: the sum over sequences of
// g * the winning window.
extern "C" __global__ void cnn_weight_grad(float *dW, const float *x, const float *dy, const float *out, const int *arg,
                                           int B, int T, int E, int F, int nWF, int col0, int w) {
    GRID_STRIDE(i, (i64)F * E * w) {
        int f = (int)(i / ((i64)E * w));
        int rem = (int)(i - (i64)f * E * w);
        int e = rem / w, k = rem - e * w;
        float s = 0.0f;
        for (int b = 0; b < B; b++) {
            i64 j = (i64)b * nWF + col0 + f;
            float g = dy[j];
            if (out[j] > 0.0f && g != 0.0f) s += g * x[((i64)b * T + arg[j] + k) * E + e];
        }
        dW[i] = s;
    }
}

// Input gradient of width w: each thread owns column e of sequence b and adds g * filter to the
// winning windows, filters in order (first = 1 zeroes the column first).
extern "C" __global__ void cnn_input_grad(float *dx, const float *wf, const float *dy, const float *out, const int *arg,
                                          int B, int T, int E, int F, int nWF, int col0, int w, int first) {
    GRID_STRIDE(i, (i64)B * E) {
        int b = (int)(i / E), e = (int)(i - (i64)b * E);
        float *col = dx + (i64)b * T * E + e;
        if (first)
            for (int t = 0; t < T; t++) col[(i64)t * E] = 0.0f;
        for (int f = 0; f < F; f++) {
            i64 j = (i64)b * nWF + col0 + f;
            float g = dy[j];
            if (!(out[j] > 0.0f && g != 0.0f)) continue;
            const float *wr = wf + (i64)f * w * E + e;
            float *dst = col + (i64)arg[j] * E;
            for (int k = 0; k < w; k++) dst[(i64)k * E] += g * wr[k * E];
        }
    }
}

// ---------------------------------------------------------------------------- frozen encoder
// nn/bert/forward.go, run on a padded batch: rows = B*T, row b*T+t is position t of sequence b;
// positions at or past a sequence's length are padding (id 0), computed like the others and
// never attended to. The row kernels give each row one block of 256 threads (grid-stride over
// rows); their sums run in double, as the CPU's layer norm's do.

// The sum of v over the block (blockDim.x == 256), returned to every thread.
__device__ double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) sh[threadIdx.x] += sh[threadIdx.x + k];
        __syncthreads();
    }
    double s = sh[0];
    __syncthreads();
    return s;
}

// Layer norm of the row y[0..H) in place (nn/bert layerNorm: biased variance, eps added to it).
__device__ void row_layer_norm(float *y, const float *g, const float *b, int H, double eps, double *sh) {
    double s = 0.0;
    for (int j = threadIdx.x; j < H; j += blockDim.x) s += y[j];
    double mean = block_sum(s, sh) / H;
    double ss = 0.0;
    for (int j = threadIdx.x; j < H; j += blockDim.x) {
        double d = (double)y[j] - mean;
        ss += d * d;
    }
    double inv = 1.0 / sqrt(block_sum(ss, sh) / H + eps);
    for (int j = threadIdx.x; j < H; j += blockDim.x) y[j] = (float)(((double)y[j] - mean) * inv) * g[j] + b[j];
}

// The embeddings: x[r] = LayerNorm((word[ids[r]] + typ0) + pos[r mod T]).
extern "C" __global__ void bert_embed(float *x, const float *word, const float *pos, const float *typ0, const float *g,
                                      const float *b, const int *ids, int rows, int T, int H, double eps) {
    __shared__ double sh[256];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        float *y = x + (i64)r * H;
        const float *w = word + (i64)ids[r] * H, *p = pos + (i64)(r % T) * H;
        for (int j = threadIdx.x; j < H; j += blockDim.x) y[j] = (w[j] + typ0[j]) + p[j];
        __syncthreads();
        row_layer_norm(y, g, b, H, eps, sh);
    }
}

// out[r] = LayerNorm(a[r] + res[r]): a sub-layer's output added to its input (out may be res).
extern "C" __global__ void residual_norm(float *out, const float *a, const float *res, const float *g, const float *b,
                                         int rows, int H, double eps) {
    __shared__ double sh[256];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        float *y = out + (i64)r * H;
        const float *x = a + (i64)r * H, *z = res + (i64)r * H;
        for (int j = threadIdx.x; j < H; j += blockDim.x) y[j] = x[j] + z[j];
        __syncthreads();
        row_layer_norm(y, g, b, H, eps, sh);
    }
}

// Softmax of each row of the attention scores s [heads][B][T][T] in place, over the keys of the
// row's sequence (j < lens[b]); the padding keys get 0, as transformers' additive mask of the
// float32 minimum gives them.
extern "C" __global__ void attn_softmax(float *s, const int *lens, i64 rows, int T, int B) {
    __shared__ double sh[256];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        float *y = s + r * T;
        int L = lens[(r / T) % B];
        float m = -3.402823466e38f;
        for (int j = threadIdx.x; j < L; j += blockDim.x) m = fmaxf(m, y[j]);
        sh[threadIdx.x] = m;
        __syncthreads();
        for (int k = blockDim.x / 2; k > 0; k >>= 1) {
            if (threadIdx.x < k) sh[threadIdx.x] = fmax(sh[threadIdx.x], sh[threadIdx.x + k]);
            __syncthreads();
        }
        m = (float)sh[0];
        __syncthreads();
        double sum = 0.0;
        for (int j = threadIdx.x; j < T; j += blockDim.x) {
            float e = j < L ? expf(y[j] - m) : 0.0f;
            y[j] = e;
            sum += e;
        }
        float inv = (float)(1.0 / block_sum(sum, sh));
        for (int j = threadIdx.x; j < L; j += blockDim.x) y[j] *= inv;
    }
}

// The feed-forward's activation in place (nn/bert activation): kind 0 GELU with erf, 1 GELU's
// tanh approximation (gelu_new), 2 ReLU.
extern "C" __global__ void ffn_act(float *y, i64 n, int kind) {
    GRID_STRIDE(i, n) {
        float x = y[i];
        if (kind == 0) {
            y[i] = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
        } else if (kind == 1) {
            y[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
        } else {
            y[i] = x > 0.0f ? x : 0.0f;
        }
    }
}

// y = a y + b x (the running sum of the hidden states Model.Layers picks, then its mean).
extern "C" __global__ void axpby(float *y, const float *x, i64 n, float a, float b) {
    GRID_STRIDE(i, n) { y[i] = a * y[i] + b * x[i]; }
}
