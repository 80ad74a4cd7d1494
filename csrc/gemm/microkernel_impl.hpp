// The register-tile micro-kernel and macro-kernel, written once with GCC/Clang
// vector extensions and compiled once per ISA: each gemm_<isa>.cpp defines
// CONVEXT_VBYTES (the vector width in bytes), CONVEXT_MR (rows of the tile)
// and CONVEXT_KERNEL_NS, and is compiled with that ISA's flags. Everything
// here has internal linkage, so the per-ISA copies can never be mixed up by
// the linker.
//
// Tile: MR rows x NR = 2 vectors. AVX2 (16 registers): 6 x 16 floats, 12
// accumulators + 2 B vectors + 1 broadcast. AVX-512 (32 registers): 8 x 32
// floats, 16 accumulators (measured on Zen 5, 1 thread, res3x3 layers: 8x32
// ~185 GFLOP/s, 12x32 ~165, AVX2 6x16 ~100).
#pragma once

#if !defined(CONVEXT_VBYTES) || !defined(CONVEXT_MR)
#error "define CONVEXT_VBYTES and CONVEXT_MR before including microkernel_impl.hpp"
#endif

#include "gemm.hpp"

namespace convext::gemm {
namespace CONVEXT_KERNEL_NS {
namespace {

template <class T>
struct Vec;
template <>
struct Vec<float> {
    typedef float type __attribute__((vector_size(CONVEXT_VBYTES)));
};
template <>
struct Vec<double> {
    typedef double type __attribute__((vector_size(CONVEXT_VBYTES)));
};

constexpr int kMR = CONVEXT_MR;
template <class T>
constexpr int kLanes = CONVEXT_VBYTES / int(sizeof(T));
template <class T>
constexpr int kNR = 2 * kLanes<T>;

template <class T>
inline typename Vec<T>::type vload(const T* p) {
    typename Vec<T>::type v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
template <class T>
inline void vstore(T* p, typename Vec<T>::type v) {
    __builtin_memcpy(p, &v, sizeof v);
}

// C[MR x NR] = (accumulate ? C : 0) + a[kc x MR]^T-panel * b[kc x NR]-panel.
template <class T>
inline void ukernel(index_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c,
                    index_t ldc, bool accumulate) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    V acc[kMR][2];
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = V{};
    for (index_t k = 0; k < kc; ++k) {
        const V b0 = vload(b), b1 = vload(b + L);
#pragma GCC unroll 16
        for (int i = 0; i < kMR; ++i) {
            const V ai = V{} + a[i];
            acc[i][0] += ai * b0;
            acc[i][1] += ai * b1;
        }
        a += kMR;
        b += 2 * L;
    }
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
        T* ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] += vload(ci);
            acc[i][1] += vload(ci + L);
        }
        vstore(ci, acc[i][0]);
        vstore(ci + L, acc[i][1]);
    }
}

template <class T>
void macro_kernel(index_t m, index_t n, index_t kc, const T* Ap, const T* Bp, T* C, index_t ldc,
                  bool accumulate) {
    constexpr int NR = kNR<T>;
    alignas(64) T tile[kMR * NR];
    for (index_t j0 = 0; j0 < n; j0 += NR) {
        const index_t nr = n - j0 < NR ? n - j0 : NR;
        const T* b = Bp + j0 * kc;
        for (index_t i0 = 0; i0 < m; i0 += kMR) {
            const index_t mr = m - i0 < kMR ? m - i0 : kMR;
            const T* a = Ap + i0 * kc;
            T* c = C + i0 * ldc + j0;
            if (mr == kMR && nr == NR) {
                ukernel<T>(kc, a, b, c, ldc, accumulate);
                continue;
            }
            // Edge tile: compute the full tile aside, copy the valid part.
            ukernel<T>(kc, a, b, tile, NR, false);
            for (index_t i = 0; i < mr; ++i)
                for (index_t j = 0; j < nr; ++j)
                    c[i * ldc + j] = (accumulate ? c[i * ldc + j] : T(0)) + tile[i * NR + j];
        }
    }
}

// One vector of outputs in each of NROWS output rows (rows `row_step` apart
// in the patch), accumulated in registers: NROWS independent FMA chains that
// share each broadcast filter tap.
template <class T, int NROWS>
inline void corr_block(index_t cg, index_t R, index_t S, const T* w, const T* patch,
                       index_t row_step, index_t c_stride, index_t r_stride, index_t s_stride,
                       T init, typename Vec<T>::type* out) {
    using V = typename Vec<T>::type;
    V acc[NROWS];
#pragma GCC unroll 8
    for (int i = 0; i < NROWS; ++i) acc[i] = V{} + init;
    for (index_t c = 0; c < cg; ++c)
        for (index_t r = 0; r < R; ++r) {
            const T* src = patch + c * c_stride + r * r_stride;
            const T* wr = w + (c * R + r) * S;
            for (index_t s = 0; s < S; ++s) {
                const V wv = V{} + wr[s];
                const T* sp = src + s * s_stride;
#pragma GCC unroll 8
                for (int i = 0; i < NROWS; ++i) acc[i] += wv * vload(sp + i * row_step);
            }
        }
#pragma GCC unroll 8
    for (int i = 0; i < NROWS; ++i) out[i] = acc[i];
}

template <class T>
void corr_rows(index_t wo, index_t rows, index_t cg, index_t R, index_t S, const T* w,
               const T* patch, index_t row_step, index_t c_stride, index_t r_stride,
               index_t s_stride, T init, T* y) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    constexpr int kRows = 4;
    V block[kRows];
    for (index_t q = 0; q < wo; q += L) {
        const index_t n = wo - q < L ? wo - q : L;
        auto put = [&](T* dst, const V& v) {
            if (n == L) {
                vstore(dst, v);
            } else {
                for (index_t l = 0; l < n; ++l) dst[l] = v[l];
            }
        };
        const T* pq = patch + q;
        index_t i = 0;
        for (; i + kRows <= rows; i += kRows) {
            corr_block<T, kRows>(cg, R, S, w, pq + i * row_step, row_step, c_stride, r_stride,
                                 s_stride, init, block);
            for (int j = 0; j < kRows; ++j) put(y + (i + j) * wo + q, block[j]);
        }
        for (; i < rows; ++i) {
            corr_block<T, 1>(cg, R, S, w, pq + i * row_step, row_step, c_stride, r_stride,
                             s_stride, init, block);
            put(y + i * wo + q, block[0]);
        }
    }
}

// acc[s*L + l] += lane l of sum_i sum_{q<wq} dy[i][q] * x[i][q + s*s_stride]
// over `rows` row pairs, s < S: the S weight taps of one filter row
// (depthwise weight gradient). wq is a multiple of L; rows zero padded.
template <class T>
void dot_taps(index_t rows, index_t wq, index_t S, const T* const* dy, const T* const* x,
              index_t s_stride, T* acc) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    constexpr index_t kTaps = 8;  // accumulators held in registers at a time
    for (index_t s0 = 0; s0 < S; s0 += kTaps) {
        const index_t ns = S - s0 < kTaps ? S - s0 : kTaps;
        V a[kTaps];
        for (index_t s = 0; s < ns; ++s) a[s] = vload(acc + (s0 + s) * L);
        for (index_t i = 0; i < rows; ++i) {
            const T* d = dy[i];
            const T* xs = x[i] + s0 * s_stride;
            for (index_t q = 0; q < wq; q += L) {
                const V dv = vload(d + q);
                for (index_t s = 0; s < ns; ++s) a[s] += dv * vload(xs + q + s * s_stride);
            }
        }
        for (index_t s = 0; s < ns; ++s) vstore(acc + (s0 + s) * L, a[s]);
    }
}

// ---- Winograd F(4x4, 3x3) transforms, on one panel of NR tiles (lanes) ----

// (B^T x)[0..5] for six vectors.
template <class V>
inline void bt6(const V* x, V* o) {
    o[0] = 4 * x[0] - 5 * x[2] + x[4];
    o[1] = -4 * (x[1] + x[2]) + x[3] + x[4];
    o[2] = 4 * (x[1] - x[2]) - x[3] + x[4];
    o[3] = 2 * (x[3] - x[1]) - x[2] + x[4];
    o[4] = 2 * (x[1] - x[3]) - x[2] + x[4];
    o[5] = 4 * x[1] - 5 * x[3] + x[5];
}

// (A^T x)[0..3] for six vectors.
template <class V>
inline void at6(const V* x, V* o) {
    const V s12 = x[1] + x[2], d12 = x[1] - x[2], s34 = x[3] + x[4], d34 = x[3] - x[4];
    o[0] = x[0] + s12 + s34;
    o[1] = d12 + 2 * d34;
    o[2] = s12 + 4 * s34;
    o[3] = d12 + 8 * d34 + x[5];
}

// v[xi * v_stride + lane] = (B^T d B)[xi] with d[(i*6 + j) * NR + lane].
template <class T>
void winograd_input(const T* d, T* v, index_t v_stride) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    for (int h = 0; h < 2; ++h) {
        V e[36];
        for (int j = 0; j < 6; ++j) {
            V col[6], out[6];
            for (int i = 0; i < 6; ++i) col[i] = vload(d + (i * 6 + j) * 2 * L + h * L);
            bt6(col, out);
            for (int i = 0; i < 6; ++i) e[i * 6 + j] = out[i];
        }
        for (int i = 0; i < 6; ++i) {
            V out[6];
            bt6(e + i * 6, out);
            for (int j = 0; j < 6; ++j) vstore(v + (i * 6 + j) * v_stride + h * L, out[j]);
        }
    }
}

// y[(i*4 + j) * NR + lane] = (A^T m A)[i][j] with m[xi * m_stride + lane].
template <class T>
void winograd_output(const T* m, index_t m_stride, T* y) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    for (int h = 0; h < 2; ++h) {
        V o[24];
        for (int j = 0; j < 6; ++j) {
            V col[6], out[4];
            for (int i = 0; i < 6; ++i) col[i] = vload(m + (i * 6 + j) * m_stride + h * L);
            at6(col, out);
            for (int i = 0; i < 4; ++i) o[i * 6 + j] = out[i];
        }
        for (int i = 0; i < 4; ++i) {
            V out[4];
            at6(o + i * 6, out);
            for (int j = 0; j < 4; ++j) vstore(y + (i * 4 + j) * 2 * L + h * L, out[j]);
        }
    }
}

}  // namespace

// Pack a B block given by columns (column j: kc contiguous values at
// cols + j*ld) into NR-column panels, zero padding to round_up(n, NR): a
// transpose. Compiled per ISA with NR a constant, so the compiler can turn
// the inner loop into vector gathers.
template <class T>
void pack_b_cols(index_t kc, index_t n, const T* cols, index_t ld, T* Bp) {
    constexpr int NR = kNR<T>;
    for (index_t j0 = 0; j0 < n; j0 += NR) {
        const index_t w = n - j0 < NR ? n - j0 : NR;
        T* __restrict dst = Bp + j0 * kc;
        const T* __restrict src = cols + j0 * ld;
        if (w == NR) {
            for (index_t k = 0; k < kc; ++k)
#pragma GCC unroll 32
                for (int j = 0; j < NR; ++j) dst[k * NR + j] = src[j * ld + k];
            continue;
        }
        for (index_t k = 0; k < kc; ++k)
            for (int j = 0; j < NR; ++j) dst[k * NR + j] = j < w ? src[j * ld + k] : T(0);
    }
}

// (A y)[0..5] for four vectors (A = the transpose of A^T above).
template <class V>
inline void a6(const V* y, V* o) {
    o[0] = y[0];
    o[1] = y[0] + y[1] + y[2] + y[3];
    o[2] = y[0] - y[1] + y[2] - y[3];
    o[3] = y[0] + 2 * y[1] + 4 * y[2] + 8 * y[3];
    o[4] = y[0] - 2 * y[1] + 4 * y[2] - 8 * y[3];
    o[5] = y[3];
}

// z[xi * z_stride + lane] = (A g A^T)[xi] for 4x4 output-gradient tiles
// g[(i*4 + j) * NR + lane]: the adjoint of winograd_output (weight gradient).
template <class T>
void winograd_grad_output(const T* g, T* z, index_t z_stride) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    for (int h = 0; h < 2; ++h) {
        V e[24];  // A g: 6 x 4
        for (int j = 0; j < 4; ++j) {
            V col[4], out[6];
            for (int i = 0; i < 4; ++i) col[i] = vload(g + (i * 4 + j) * 2 * L + h * L);
            a6(col, out);
            for (int i = 0; i < 6; ++i) e[i * 4 + j] = out[i];
        }
        for (int i = 0; i < 6; ++i) {
            V out[6];
            a6(e + i * 4, out);
            for (int j = 0; j < 6; ++j) vstore(z + (i * 6 + j) * z_stride + h * L, out[j]);
        }
    }
}

// dst[q] = src[2*q], q < n: the patch gather of stride-2 layers (the
// compiler vectorises the constant-stride loop for this ISA).
template <class T>
void copy_stride2(index_t n, const T* __restrict src, T* __restrict dst) {
    for (index_t q = 0; q < n; ++q) dst[q] = src[2 * q];
}

// ---- max pooling: one output row, every window tap in scan order ----
//
// rows[t][q] is tap t's value for output q (-inf where the tap falls in the
// padding), t < ntaps in PyTorch's scan order, rows readable up to
// round_up(wo, lanes). out[q] = the running max with PyTorch's rule (take a
// value when it is greater or NaN); tap[q] = the winning tap, -1 if none
// was taken (a window of -inf only). Branch-free: a select per tap.
template <class T>
struct IntOf;
template <>
struct IntOf<float> {
    using type = std::int32_t;
};
template <>
struct IntOf<double> {
    using type = std::int64_t;
};

template <class T>
void max_pool_row(index_t wo, index_t ntaps, const T* const* rows, T* out,
                  typename IntOf<T>::type* tap) {
    using V = typename Vec<T>::type;
    using I = typename IntOf<T>::type;
    typedef I VI __attribute__((vector_size(CONVEXT_VBYTES)));
    constexpr int L = kLanes<T>;
    for (index_t q = 0; q < wo; q += L) {
        V m = V{} - static_cast<T>(__builtin_inf());
        VI t = VI{} - 1;
        for (index_t k = 0; k < ntaps; ++k) {
            const V v = vload(rows[k] + q);
            const VI take = (v > m) | (v != v);
            m = (V)(((VI)v & take) | ((VI)m & ~take));
            t = (take & (VI{} + static_cast<I>(k))) | (t & ~take);
        }
        const index_t n = wo - q < L ? wo - q : L;
        for (index_t l = 0; l < n; ++l) {
            out[q + l] = m[l];
            tap[q + l] = t[l];
        }
    }
}

// This ISA's entry of the kernel list (dispatch.cpp), named by the caller.
template <class T>
Kernel<T> make_kernel(const char* name) {
    return {name,      kMR,         kNR<T>,           macro_kernel<T>,   pack_b_cols<T>,
            corr_rows<T>, kLanes<T>, dot_taps<T>, winograd_input<T>, winograd_output<T>,
            winograd_grad_output<T>, copy_stride2<T>, max_pool_row<T>};
}

}  // namespace CONVEXT_KERNEL_NS
}  // namespace convext::gemm
