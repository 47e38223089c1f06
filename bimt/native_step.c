/* The gradient of a batched BioMLP ensemble's loss (SiLU hidden layers), member by member.

   bimt/ensemble_native.py compiles this file twice (REAL float and double, through
   traincore.native) and calls bimt_silu_grad_* in place of the chain of batched tensor
   operations of ensemble_train._step: each member's activations stay in cache from its
   forward pass to its backward pass, and the call releases Python's interpreter lock.
   The tests hold it to the PyTorch path (float64: to rounding) on many shapes. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef REAL
#define REAL float
#endif
#ifndef NAME
#define NAME(x) x##_f32
#endif
typedef REAL real;

#if REAL_IS_DOUBLE
static inline real rexp(real x) { return exp(x); }
#else
/* e^x for float: Cephes' polynomial on x - k ln 2 times 2^k from the exponent bits
   (within 2 ulp on [-87, 88], clamped outside; NaN in, NaN out). Written so that
   compilers vectorise it: the clamps are min/max instructions, one blend at the end. */
static inline float rexp(float x) {
    float c = x > -87.0f ? x : -87.0f;
    c = c < 88.0f ? c : 88.0f;
    const int32_t k = (int32_t)(c * 1.44269504088896341f + 128.5f) - 128;
    const float kf = (float)k;
    const float r = c - kf * 0.693359375f + kf * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = (k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x == x ? p * scale : x;
}
#endif

static void dense(int64_t O, int64_t I, int64_t N, const real *restrict w,
                  const real *restrict b, const real *restrict h, real *restrict z) {
    int64_t o = 0;
    for (; o + 4 <= O; o += 4) {
        real *z0 = z + o * N, *z1 = z0 + N, *z2 = z1 + N, *z3 = z2 + N;
        const real c0 = b ? b[o] : 0, c1 = b ? b[o + 1] : 0, c2 = b ? b[o + 2] : 0,
                   c3 = b ? b[o + 3] : 0;
        for (int64_t j = 0; j < N; j++) { z0[j] = c0; z1[j] = c1; z2[j] = c2; z3[j] = c3; }
        for (int64_t i = 0; i < I; i++) {
            const real a0 = w[o * I + i], a1 = w[(o + 1) * I + i], a2 = w[(o + 2) * I + i],
                       a3 = w[(o + 3) * I + i];
            const real *hr = h + i * N;
            for (int64_t j = 0; j < N; j++) {
                const real v = hr[j];
                z0[j] += a0 * v; z1[j] += a1 * v; z2[j] += a2 * v; z3[j] += a3 * v;
            }
        }
    }
    for (; o < O; o++) {
        real *z0 = z + o * N;
        const real c0 = b ? b[o] : 0;
        for (int64_t j = 0; j < N; j++) z0[j] = c0;
        for (int64_t i = 0; i < I; i++) {
            const real a0 = w[o * I + i];
            const real *hr = h + i * N;
            for (int64_t j = 0; j < N; j++) z0[j] += a0 * hr[j];
        }
    }
}

/* s = sigmoid(z), z = silu(z) = z s */
static void silu(int64_t len, real *restrict z, real *restrict s) {
    for (int64_t j = 0; j < len; j++) {
        const real v = 1 / (1 + rexp(-z[j]));
        s[j] = v;
        z[j] *= v;
    }
}

/* gw[o, i] = sum_j g[o, j] h[i, j];  gb[o] = sum_j g[o, j] */
static void weight_grad(int64_t O, int64_t I, int64_t N, const real *restrict g,
                        const real *restrict h, real *restrict gw, real *restrict gb) {
    for (int64_t o = 0; o < O; o++) {
        const real *gr = g + o * N;
        if (gb) {
            real acc = 0;
            #pragma omp simd reduction(+:acc)
            for (int64_t j = 0; j < N; j++) acc += gr[j];
            gb[o] = acc;
        }
        int64_t i = 0;
        for (; i + 4 <= I; i += 4) {
            const real *h0 = h + i * N, *h1 = h0 + N, *h2 = h1 + N, *h3 = h2 + N;
            real a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            #pragma omp simd reduction(+:a0, a1, a2, a3)
            for (int64_t j = 0; j < N; j++) {
                const real v = gr[j];
                a0 += v * h0[j]; a1 += v * h1[j]; a2 += v * h2[j]; a3 += v * h3[j];
            }
            gw[o * I + i] = a0; gw[o * I + i + 1] = a1; gw[o * I + i + 2] = a2;
            gw[o * I + i + 3] = a3;
        }
        for (; i < I; i++) {
            const real *h0 = h + i * N;
            real a0 = 0;
            #pragma omp simd reduction(+:a0)
            for (int64_t j = 0; j < N; j++) a0 += gr[j] * h0[j];
            gw[o * I + i] = a0;
        }
    }
}

/* d[i, :] = (sum_o w[o, i] g[o, :]) * silu'(z[i, :]), silu' = s + h - h s */
static void hidden_grad(int64_t O, int64_t I, int64_t N, const real *restrict w,
                        const real *restrict g, const real *restrict s,
                        const real *restrict hh, real *restrict d) {
    for (int64_t i = 0; i < I; i++) {
        real *dr = d + i * N;
        for (int64_t j = 0; j < N; j++) dr[j] = 0;
        int64_t o = 0;
        for (; o + 4 <= O; o += 4) {
            const real a0 = w[o * I + i], a1 = w[(o + 1) * I + i], a2 = w[(o + 2) * I + i],
                       a3 = w[(o + 3) * I + i];
            const real *g0 = g + o * N, *g1 = g0 + N, *g2 = g1 + N, *g3 = g2 + N;
            for (int64_t j = 0; j < N; j++)
                dr[j] += a0 * g0[j] + a1 * g1[j] + a2 * g2[j] + a3 * g3[j];
        }
        for (; o < O; o++) {
            const real a0 = w[o * I + i];
            const real *g0 = g + o * N;
            for (int64_t j = 0; j < N; j++) dr[j] += a0 * g0[j];
        }
        const real *sr = s + i * N, *hr = hh + i * N;
        for (int64_t j = 0; j < N; j++) dr[j] *= sr[j] + hr[j] - hr[j] * sr[j];
    }
}

/* Every member's gradient, written into gw/gb.  ptr: per layer k (4 entries) the base
   addresses of weight (M, out, in), bias (M, out) or 0, their gradients; then x (M, w0, n),
   target (M, n_out, n) reals for kind 0 or labels (M, n) int64 for kind 1.  work: at least
   NAME(work_size) reals.  Returns 0. */
int64_t NAME(bimt_silu_grad)(int64_t members, int64_t layers, const int64_t *widths,
                             int64_t n, int64_t kind, double scale_d, const int64_t *ptr,
                             real *work) {
    const real scale = (real)scale_d;
    int64_t off = 0, wmax = 0;
    real *hs[64], *ss[64];
    for (int64_t k = 1; k < layers; k++) {
        hs[k] = work + off; off += widths[k] * n;
        ss[k] = work + off; off += widths[k] * n;
    }
    for (int64_t k = 0; k <= layers; k++) wmax = widths[k] > wmax ? widths[k] : wmax;
    real *ga = work + off, *gbuf = ga + wmax * n;
    const int64_t nout = widths[layers];
    for (int64_t m = 0; m < members; m++) {
        const real *x = (const real *)(intptr_t)ptr[4 * layers] + m * widths[0] * n;
        const real *h = x;
        for (int64_t k = 0; k < layers; k++) {
            const int64_t O = widths[k + 1], I = widths[k];
            const real *w = (const real *)(intptr_t)ptr[4 * k] + m * O * I;
            const real *b = ptr[4 * k + 1] ? (const real *)(intptr_t)ptr[4 * k + 1] + m * O : 0;
            if (k + 1 == layers) { dense(O, I, n, w, b, h, ga); break; }
            real *z = hs[k + 1], *s = ss[k + 1];
            dense(O, I, n, w, b, h, z);
            silu(O * n, z, s);
            h = z;
        }
        if (kind == 0) {
            const real *t = (const real *)(intptr_t)ptr[4 * layers + 1] + m * nout * n;
            for (int64_t j = 0; j < nout * n; j++) ga[j] = (ga[j] - t[j]) * scale;
        } else {
            const int64_t *lab = (const int64_t *)(intptr_t)ptr[4 * layers + 1] + m * n;
            for (int64_t j = 0; j < n; j++) {
                real mx = ga[j];
                for (int64_t c = 1; c < nout; c++) mx = ga[c * n + j] > mx ? ga[c * n + j] : mx;
                real sum = 0;
                for (int64_t c = 0; c < nout; c++) { ga[c * n + j] = rexp(ga[c * n + j] - mx); sum += ga[c * n + j]; }
                const real inv = scale / sum;
                for (int64_t c = 0; c < nout; c++) ga[c * n + j] *= inv;
                ga[lab[j] * n + j] -= scale;
            }
        }
        real *g = ga, *other = gbuf;
        for (int64_t k = layers - 1; k >= 0; k--) {
            const int64_t O = widths[k + 1], I = widths[k];
            real *gw = (real *)(intptr_t)ptr[4 * k + 2] + m * O * I;
            real *gb = ptr[4 * k + 3] ? (real *)(intptr_t)ptr[4 * k + 3] + m * O : 0;
            weight_grad(O, I, n, g, k ? hs[k] : x, gw, gb);
            if (k) {
                const real *w = (const real *)(intptr_t)ptr[4 * k] + m * O * I;
                hidden_grad(O, I, n, w, g, ss[k], hs[k], other);
                real *tmp = g; g = other; other = tmp;
            }
        }
    }
    return 0;
}

/* y = e^x elementwise, as the gradient computes it (for the tests) */
void NAME(bimt_exp)(int64_t n, const real *x, real *y) {
    for (int64_t i = 0; i < n; i++) y[i] = rexp(x[i]);
}
