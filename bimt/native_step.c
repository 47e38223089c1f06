/* One training step of a batched BioMLP ensemble (SiLU hidden layers): the loss gradient,
   member by member, then the penalty and the AdamW update in one pass.

   bimt/ensemble_native.py compiles this file twice (REAL float and double, through
   traincore.native) and calls bimt_silu_grad_* and bimt_penalty_adamw_* in place of the
   chain of batched tensor operations of ensemble_train._step: each member's activations
   stay in cache from its forward pass to its backward pass, and the calls release Python's
   interpreter lock. The tests hold it to the PyTorch path (float64: to rounding) on many
   shapes. */
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
#define rsqrt sqrt
static inline real rexp(real x) { return exp(x); }
#else
#define rsqrt sqrtf
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

/* Vectors of VL reals (GCC and Clang vector extensions: the compiler maps them onto the
   CPU's registers, two halves where those are narrower). Products hold blocks of 4 output
   rows by 2 VL columns in 8 vector registers over their whole sum. */
#define VBYTES 32
#define VL ((int64_t)(VBYTES / sizeof(real)))
typedef real vec __attribute__((vector_size(VBYTES)));
static inline vec vload(const real *p) { vec v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(real *p, vec v) { memcpy(p, &v, sizeof v); }
static inline vec splat(real x) { return (vec){0} + x; }
static inline real hsum(vec v) {
    real t = 0;
    for (int64_t l = 0; l < VL; l++) t += v[l];
    return t;
}

/* out[r, :] = init[r] (0 without init) + sum_k c[r rs + k ks] src[k, :], for 4 rows r
   (rows of out and src N long) */
static void combine4(int64_t K, int64_t N, const real *restrict c, int64_t rs, int64_t ks,
                     const real *restrict init, const real *restrict src, real *restrict out) {
    const real i0 = init ? init[0] : 0, i1 = init ? init[1] : 0, i2 = init ? init[2] : 0,
               i3 = init ? init[3] : 0;
    int64_t j = 0;
    for (; j + 2 * VL <= N; j += 2 * VL) {
        vec a0 = splat(i0), b0 = a0, a1 = splat(i1), b1 = a1, a2 = splat(i2), b2 = a2,
            a3 = splat(i3), b3 = a3;
        for (int64_t k = 0; k < K; k++) {
            const vec s0 = vload(src + k * N + j), s1 = vload(src + k * N + j + VL);
            const real *ck = c + k * ks;
            const real c0 = ck[0], c1 = ck[rs], c2 = ck[2 * rs], c3 = ck[3 * rs];
            a0 += c0 * s0; b0 += c0 * s1; a1 += c1 * s0; b1 += c1 * s1;
            a2 += c2 * s0; b2 += c2 * s1; a3 += c3 * s0; b3 += c3 * s1;
        }
        vstore(out + j, a0); vstore(out + j + VL, b0);
        vstore(out + N + j, a1); vstore(out + N + j + VL, b1);
        vstore(out + 2 * N + j, a2); vstore(out + 2 * N + j + VL, b2);
        vstore(out + 3 * N + j, a3); vstore(out + 3 * N + j + VL, b3);
    }
    for (; j < N; j++) {  /* the last columns */
        real t0 = i0, t1 = i1, t2 = i2, t3 = i3;
        for (int64_t k = 0; k < K; k++) {
            const real v = src[k * N + j];
            const real *ck = c + k * ks;
            t0 += ck[0] * v; t1 += ck[rs] * v; t2 += ck[2 * rs] * v; t3 += ck[3 * rs] * v;
        }
        out[j] = t0; out[N + j] = t1; out[2 * N + j] = t2; out[3 * N + j] = t3;
    }
}

/* the same for one row */
static void combine1(int64_t K, int64_t N, const real *restrict c, int64_t ks,
                     const real *restrict init, const real *restrict src, real *restrict out) {
    const real i0 = init ? init[0] : 0;
    int64_t j = 0;
    for (; j + VL <= N; j += VL) {
        vec a0 = splat(i0);
        for (int64_t k = 0; k < K; k++) a0 += c[k * ks] * vload(src + k * N + j);
        vstore(out + j, a0);
    }
    for (; j < N; j++) {
        real t0 = i0;
        for (int64_t k = 0; k < K; k++) t0 += c[k * ks] * src[k * N + j];
        out[j] = t0;
    }
}

/* out (R x N) = init + C src, C[r, k] = c[r rs + k ks], src K x N */
static void combine(int64_t R, int64_t K, int64_t N, const real *restrict c, int64_t rs,
                    int64_t ks, const real *restrict init, const real *restrict src,
                    real *restrict out) {
    int64_t r = 0;
    for (; r + 4 <= R; r += 4)
        combine4(K, N, c + r * rs, rs, ks, init ? init + r : 0, src, out + r * N);
    for (; r < R; r++)
        combine1(K, N, c + r * rs, ks, init ? init + r : 0, src, out + r * N);
}

/* z[o, :] = b[o] + sum_i w[o, i] h[i, :]  (w: O x I, h: I x N, z: O x N) */
static void dense(int64_t O, int64_t I, int64_t N, const real *restrict w,
                  const real *restrict b, const real *restrict h, real *restrict z) {
    combine(O, I, N, w, I, 1, b, h, z);
}

/* s = sigmoid(z), z = silu(z) = z s */
static void silu(int64_t len, real *restrict z, real *restrict s) {
    for (int64_t j = 0; j < len; j++) {
        const real v = 1 / (1 + rexp(-z[j]));
        s[j] = v;
        z[j] *= v;
    }
}

/* sum_j u[j] v[j] */
static inline real dot(int64_t N, const real *restrict u, const real *restrict v) {
    const int64_t NV = N - N % VL;
    vec a = splat(0);
    for (int64_t j = 0; j < NV; j += VL) a += vload(u + j) * vload(v + j);
    real t = hsum(a);
    for (int64_t j = NV; j < N; j++) t += u[j] * v[j];
    return t;
}

/* gw[o, i] = sum_j g[o, j] h[i, j];  gb[o] = sum_j g[o, j]: blocks of 2 rows of g by 4
   rows of h, each pair's sum in a vector register */
static void weight_grad(int64_t O, int64_t I, int64_t N, const real *restrict g,
                        const real *restrict h, real *restrict gw, real *restrict gb) {
    const int64_t NV = N - N % VL;
    for (int64_t o = 0; gb && o < O; o++) {
        vec a = splat(0);
        for (int64_t j = 0; j < NV; j += VL) a += vload(g + o * N + j);
        real t = hsum(a);
        for (int64_t j = NV; j < N; j++) t += g[o * N + j];
        gb[o] = t;
    }
    int64_t o = 0;
    for (; o + 2 <= O; o += 2) {
        const real *g0 = g + o * N, *g1 = g0 + N;
        int64_t i = 0;
        for (; i + 4 <= I; i += 4) {
            const real *h0 = h + i * N, *h1 = h0 + N, *h2 = h1 + N, *h3 = h2 + N;
            vec a0 = splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int64_t j = 0; j < NV; j += VL) {
                const vec u = vload(g0 + j), v = vload(g1 + j);
                const vec x0 = vload(h0 + j), x1 = vload(h1 + j), x2 = vload(h2 + j),
                          x3 = vload(h3 + j);
                a0 += u * x0; a1 += u * x1; a2 += u * x2; a3 += u * x3;
                b0 += v * x0; b1 += v * x1; b2 += v * x2; b3 += v * x3;
            }
            real t[8] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3),
                         hsum(b0), hsum(b1), hsum(b2), hsum(b3)};
            for (int64_t j = NV; j < N; j++) {
                t[0] += g0[j] * h0[j]; t[1] += g0[j] * h1[j]; t[2] += g0[j] * h2[j];
                t[3] += g0[j] * h3[j]; t[4] += g1[j] * h0[j]; t[5] += g1[j] * h1[j];
                t[6] += g1[j] * h2[j]; t[7] += g1[j] * h3[j];
            }
            for (int64_t q = 0; q < 4; q++) {
                gw[o * I + i + q] = t[q];
                gw[(o + 1) * I + i + q] = t[4 + q];
            }
        }
        for (; i < I; i++) {
            gw[o * I + i] = dot(N, g0, h + i * N);
            gw[(o + 1) * I + i] = dot(N, g1, h + i * N);
        }
    }
    for (; o < O; o++)
        for (int64_t i = 0; i < I; i++) gw[o * I + i] = dot(N, g + o * N, h + i * N);
}

/* d[i, :] = (sum_o w[o, i] g[o, :]) * silu'(z[i, :]), silu' = s + h - h s */
static void hidden_grad(int64_t O, int64_t I, int64_t N, const real *restrict w,
                        const real *restrict g, const real *restrict s,
                        const real *restrict hh, real *restrict d) {
    combine(I, O, N, w, 1, I, 0, g, d);
    for (int64_t j = 0; j < I * N; j++) d[j] *= s[j] + hh[j] - hh[j] * s[j];
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

/* The penalty's gradient added to the loss's (grad += pen sign(flat)), then the AdamW update
   of traincore.FlatAdamW over n parameters, in one pass: lr per parameter, decay per
   parameter (1 - lr weight_decay; 0 pointer: none), bc1 and bc2 the bias corrections. */
void NAME(bimt_penalty_adamw)(int64_t n, real *restrict flat, real *restrict grad,
                              real *restrict m1, real *restrict m2, const real *restrict pen,
                              const real *restrict lr, const real *restrict decay,
                              double b1_d, double b2_d, double eps_d, double bc1_d,
                              double bc2_d) {
    const real b2 = (real)b2_d, c1 = (real)(1 - b1_d), c2 = (real)(1 - b2_d),
               eps = (real)eps_d, inv_bc1 = (real)(1 / bc1_d),
               inv_sqrt_bc2 = (real)(1 / sqrt(bc2_d));
    for (int64_t i = 0; i < n; i++) {
        real w = flat[i];
        const real g = grad[i] + pen[i] * (real)((w > 0) - (w < 0));
        grad[i] = g;
        if (decay) w *= decay[i];
        const real a = m1[i] + c1 * (g - m1[i]);
        const real v = b2 * m2[i] + c2 * g * g;
        m1[i] = a;
        m2[i] = v;
        flat[i] = w - lr[i] * inv_bc1 * a / (rsqrt(v) * inv_sqrt_bc2 + eps);
    }
}
