// The register-tile micro-kernel and macro-kernel, written once with GCC/Clang
// vector extensions and compiled once per ISA: each gemm_<isa>.cpp defines
// CONVEXT_VBYTES (the vector width in bytes), CONVEXT_MR (rows of the tile)
// and CONVEXT_KERNEL_NS, and is compiled with that ISA's flags. Everything
// here has internal linkage, so the per-ISA copies can never be mixed up by
// the linker.
//
// Tile: MR rows x NR = 2 vectors. AVX2 (16 registers): 6 x 16 floats, 12
// accumulators + 2 B vectors + 1 broadcast. AVX-512 (32 registers): 8 x 32
// floats, 16 accumulators (12 x 32 was slower: docs/performance.md, "Design
// measurements").
#pragma once

#if !defined(CONVEXT_VBYTES) || !defined(CONVEXT_MR) || !defined(CONVEXT_DOT_K) || \
    !defined(CONVEXT_DOT_J)
#error "define CONVEXT_VBYTES, CONVEXT_MR, CONVEXT_DOT_K/J before including microkernel_impl.hpp"
#endif

#include "kernels/kernel.hpp"

#include <algorithm>

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

// 8 values, whatever the ISA's width (8 x 8 transposes), and 8 indices of
// the same width.
template <class T>
struct Vec8;
template <>
struct Vec8<float> {
    typedef float type __attribute__((vector_size(32)));
    typedef std::int32_t index __attribute__((vector_size(32)));
};
template <>
struct Vec8<double> {
    typedef double type __attribute__((vector_size(64)));
    typedef std::int64_t index __attribute__((vector_size(64)));
};

// Element i of SHUFFLE8(a, b, idx...) is element idx[i] of a then b.
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define CONVEXT_SHUFFLE8(T, a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define CONVEXT_SHUFFLE8(T, a, b, ...) \
    __builtin_shuffle(a, b, typename Vec8<T>::index{__VA_ARGS__})
#endif

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

// x in every lane. Written as x - 0, which is x for every x (x + 0 is not:
// -0 + 0 = +0), so the compiler emits a bare broadcast (or folds it into an
// FMA's memory operand) instead of an add and a broadcast.
template <class T>
inline typename Vec<T>::type splat(T x) {
    return x - typename Vec<T>::type{};
}

// Keep a loaded vector in a register: without this the compiler may fold
// the load into each FMA that uses it (a memory operand per FMA), which for
// values shared by several FMAs makes the loop load-bound.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define CONVEXT_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define CONVEXT_IN_REGISTER(v) (void)(v)
#endif

// Where row k of a B block's NR-column panel lies: packed panels (row k at
// panel + k*NR) or rows read in place from a buffer (row k at base + off[k]:
// the indirect GEMM of the convolution, no pack).
template <class T>
struct PackedB {
    const T* p;
    index_t kc;
    const T* panel(index_t j0) const { return p + j0 * kc; }
    static const T* row(const T* panel, index_t k) { return panel + k * kNR<T>; }
};
template <class T>
struct IndirectB {
    const T* base;
    const index_t* off;
    struct Panel {
        const T* p;
        const index_t* off;
    };
    Panel panel(index_t j0) const { return {base + j0, off}; }
    static const T* row(const Panel& panel, index_t k) { return panel.p + panel.off[k]; }
};

// C[MR x NV*L] = (accumulate ? C : 0) + a[kc x MR]^T-panel * (row k of B's
// panel): the full tile (NV = 2 vectors) or its left half (NV = 1, the last
// columns of a row).
template <class T, class B, int NV, class Panel>
inline void ukernel(index_t kc, const T* __restrict a, const Panel& b, T* __restrict c,
                    index_t ldc, bool accumulate) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    V acc[kMR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i)
        for (int v = 0; v < NV; ++v) acc[i][v] = V{};
    for (index_t k = 0; k < kc; ++k) {
        const T* bk = B::row(b, k);
        V bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = vload(bk + v * L);
#pragma GCC unroll 16
        for (int i = 0; i < kMR; ++i) {
            const V ai = splat(a[i]);
            for (int v = 0; v < NV; ++v) acc[i][v] += ai * bv[v];
        }
        a += kMR;
    }
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
        T* ci = c + i * ldc;
        for (int v = 0; v < NV; ++v) {
            if (accumulate) acc[i][v] += vload(ci + v * L);
            vstore(ci + v * L, acc[i][v]);
        }
    }
}

template <class T, class B>
void macro_loop(index_t m, index_t n, index_t kc, const T* Ap, const B& bsrc, T* C, index_t ldc,
                bool accumulate) {
    constexpr int L = kLanes<T>, NR = kNR<T>;
    alignas(64) T tile[kMR * NR];
    for (index_t j0 = 0; j0 < n; j0 += NR) {
        const index_t nr = n - j0 < NR ? n - j0 : NR;
        const auto b = bsrc.panel(j0);
        for (index_t i0 = 0; i0 < m; i0 += kMR) {
            const index_t mr = m - i0 < kMR ? m - i0 : kMR;
            const T* a = Ap + i0 * kc;
            T* c = C + i0 * ldc + j0;
            if (mr == kMR && (nr == NR || nr == L)) {
                if (nr == NR)
                    ukernel<T, B, 2>(kc, a, b, c, ldc, accumulate);
                else
                    ukernel<T, B, 1>(kc, a, b, c, ldc, accumulate);
                continue;
            }
            // Edge tile: compute the tile aside, copy the valid part.
            if (nr <= L)
                ukernel<T, B, 1>(kc, a, b, tile, NR, false);
            else
                ukernel<T, B, 2>(kc, a, b, tile, NR, false);
            for (index_t i = 0; i < mr; ++i)
                for (index_t j = 0; j < nr; ++j)
                    c[i * ldc + j] = (accumulate ? c[i * ldc + j] : T(0)) + tile[i * NR + j];
        }
    }
}

template <class T>
void macro_kernel(index_t m, index_t n, index_t kc, const T* Ap, const T* Bp, T* C, index_t ldc,
                  bool accumulate) {
    macro_loop(m, n, kc, Ap, PackedB<T>{Bp, kc}, C, ldc, accumulate);
}

template <class T>
void macro_indirect(index_t m, index_t n, index_t kc, const T* Ap, const T* b, const index_t* off,
                    T* C, index_t ldc, bool accumulate) {
    macro_loop(m, n, kc, Ap, IndirectB<T>{b, off}, C, ldc, accumulate);
}

// One vector of outputs in each of NROWS output rows (rows `row_step` apart
// in the patch) of KB output channels, accumulated in registers: KB*NROWS
// independent FMA chains; each patch load serves KB channels, each
// broadcast filter tap NROWS rows. `out` holds the starting values.
template <class T, int KB, int NROWS>
inline void corr_block(index_t cg, index_t R, index_t S, const T* w, index_t w_step,
                       const T* patch, index_t row_step, index_t c_stride, index_t r_stride,
                       index_t s_stride, typename Vec<T>::type (*out)[NROWS]) {
    using V = typename Vec<T>::type;
    V acc[KB][NROWS];
#pragma GCC unroll 4
    for (int j = 0; j < KB; ++j)
#pragma GCC unroll 8
        for (int i = 0; i < NROWS; ++i) acc[j][i] = out[j][i];
    for (index_t c = 0; c < cg; ++c)
        for (index_t r = 0; r < R; ++r) {
            const T* src = patch + c * c_stride + r * r_stride;
            const T* wr = w + (c * R + r) * S;
            for (index_t s = 0; s < S; ++s) {
                const T* sp = src + s * s_stride;
                V x[NROWS];
#pragma GCC unroll 8
                for (int i = 0; i < NROWS; ++i) {
                    x[i] = vload(sp + i * row_step);
                    if (KB > 1) CONVEXT_IN_REGISTER(x[i]);
                }
#pragma GCC unroll 4
                for (int j = 0; j < KB; ++j) {
                    const V wv = splat(wr[j * w_step + s]);
#pragma GCC unroll 8
                    for (int i = 0; i < NROWS; ++i) acc[j][i] += wv * x[i];
                }
            }
        }
#pragma GCC unroll 4
    for (int j = 0; j < KB; ++j)
#pragma GCC unroll 8
        for (int i = 0; i < NROWS; ++i) out[j][i] = acc[j][i];
}

// Rows [0, rows) of KB output channels, NROWS rows at a time.
template <class T, int KB, int NROWS>
void corr_rows_kb(index_t wo, index_t rows, index_t cg, index_t R, index_t S, const T* w,
                  index_t w_step, const T* patch, index_t row_step, index_t c_stride,
                  index_t r_stride, index_t s_stride, const T* init, T* y, index_t y_step) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    for (index_t q = 0; q < wo; q += L) {
        const index_t n = wo - q < L ? wo - q : L;
        auto put = [&](T* dst, const V& v) {
            if (n == L) {
                vstore(dst, v);
            } else {
                for (index_t l = 0; l < n; ++l) dst[l] = v[l];
            }
        };
        auto run = [&](auto rows_tag, index_t i) {
            constexpr int NR = decltype(rows_tag)::value;
            V block[KB][NR];
            for (int j = 0; j < KB; ++j)
                for (int t = 0; t < NR; ++t)
                    block[j][t] = splat(init[j]);
            corr_block<T, KB, NR>(cg, R, S, w, w_step, patch + q + i * row_step, row_step,
                                  c_stride, r_stride, s_stride, block);
            for (int j = 0; j < KB; ++j)
                for (int t = 0; t < NR; ++t) put(y + j * y_step + (i + t) * wo + q, block[j][t]);
        };
        // NROWS rows at a time, the rest in halving blocks (no lone rows of
        // one FMA chain when a block of 4 or 2 fits)
        index_t i = 0;
        for (; i + NROWS <= rows; i += NROWS) run(std::integral_constant<int, NROWS>{}, i);
        if constexpr (NROWS > 4)
            for (; i + 4 <= rows; i += 4) run(std::integral_constant<int, 4>{}, i);
        if constexpr (NROWS > 2)
            for (; i + 2 <= rows; i += 2) run(std::integral_constant<int, 2>{}, i);
        for (; i < rows; ++i) run(std::integral_constant<int, 1>{}, i);
    }
}

// Up to 4 output channels at once, 4 rows at a time (8 rows of one channel:
// no faster in A/B runs).
template <class T>
void corr_rows(index_t wo, index_t rows, index_t kb, index_t cg, index_t R, index_t S,
               const T* w, index_t w_step, const T* patch, index_t row_step, index_t c_stride,
               index_t r_stride, index_t s_stride, const T* init, T* y, index_t y_step) {
    switch (kb) {
        case 1: return corr_rows_kb<T, 1, 4>(wo, rows, cg, R, S, w, w_step, patch, row_step, c_stride, r_stride, s_stride, init, y, y_step);
        case 2: return corr_rows_kb<T, 2, 4>(wo, rows, cg, R, S, w, w_step, patch, row_step, c_stride, r_stride, s_stride, init, y, y_step);
        case 3: return corr_rows_kb<T, 3, 4>(wo, rows, cg, R, S, w, w_step, patch, row_step, c_stride, r_stride, s_stride, init, y, y_step);
        default: return corr_rows_kb<T, 4, 4>(wo, rows, cg, R, S, w, w_step, patch, row_step, c_stride, r_stride, s_stride, init, y, y_step);
    }
}

// y[q] = init + sum_{t<taps} w[t] * src[off[t] + q] for q < n, NV vectors
// of q at a time (independent FMA chains sharing each splat tap); the taps
// summed in order, as corr_block sums its (c, r, s). Reads and writes whole
// vectors: src readable up to off[t] + round_up(n, L), y writable up to
// round_up(n, L).
template <class T>
void corr_taps(index_t n, index_t taps, const T* w, const T* src, const index_t* off, T init,
               T* y) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>, NV = 4;
    auto run = [&](auto nv_tag, index_t q) {
        constexpr int B = decltype(nv_tag)::value;
        V acc[B];
#pragma GCC unroll 4
        for (int v = 0; v < B; ++v) acc[v] = splat(init);
        for (index_t t = 0; t < taps; ++t) {
            const V wv = splat(w[t]);
            const T* sp = src + off[t] + q;
#pragma GCC unroll 4
            for (int v = 0; v < B; ++v) acc[v] += wv * vload(sp + v * L);
        }
#pragma GCC unroll 4
        for (int v = 0; v < B; ++v) vstore(y + q + v * L, acc[v]);
    };
    index_t q = 0;
    for (; q + NV * L <= n; q += NV * L) run(std::integral_constant<int, NV>{}, q);
    for (; q < n; q += L) run(std::integral_constant<int, 1>{}, q);
}

// acc[(r*S + s)*L + l] += lane l of sum_i sum_{q<wq} dy[i][q] * x[i*R + r][q + s*s_stride]
// for every tap (r, s): the depthwise weight gradient, output row i meeting
// input row x[i*R + r] under filter row r. wq is a multiple of L; rows zero
// padded. NU taps (from u0) at a time in registers: independent FMA chains
// that share each dy load (a 3x3 filter: 9 at once).
template <class T, int NU>
inline void dot_taps_block(index_t rows, index_t wq, index_t R, index_t S, const T* const* dy,
                           const T* const* x, index_t s_stride, index_t u0, T* acc) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    V a[NU];
    index_t off[NU], row[NU];  // tap u: x row i*R + row[u], column offset off[u]
#pragma GCC unroll 16
    for (int u = 0; u < NU; ++u) {
        a[u] = vload(acc + (u0 + u) * L);
        row[u] = (u0 + u) / S;
        off[u] = (u0 + u) % S * s_stride;
    }
    for (index_t i = 0; i < rows; ++i) {
        const T* d = dy[i];
        const T* xs[NU];
#pragma GCC unroll 16
        for (int u = 0; u < NU; ++u) xs[u] = x[i * R + row[u]] + off[u];
        for (index_t q = 0; q < wq; q += L) {
            const V dv = vload(d + q);
#pragma GCC unroll 16
            for (int u = 0; u < NU; ++u) a[u] += dv * vload(xs[u] + q);
        }
    }
#pragma GCC unroll 16
    for (int u = 0; u < NU; ++u) vstore(acc + (u0 + u) * L, a[u]);
}

template <class T>
void dot_taps(index_t rows, index_t wq, index_t R, index_t S, const T* const* dy,
              const T* const* x, index_t s_stride, T* acc) {
    for (index_t u0 = 0, taps = R * S; u0 < taps;) {
        const index_t n = taps - u0;
        switch (n >= 9 ? (n == 9 ? 9 : 8) : n) {
#define CONVEXT_DOT_TAPS(NU) \
    case NU: dot_taps_block<T, NU>(rows, wq, R, S, dy, x, s_stride, u0, acc); u0 += NU; break;
            CONVEXT_DOT_TAPS(1) CONVEXT_DOT_TAPS(2) CONVEXT_DOT_TAPS(3) CONVEXT_DOT_TAPS(4)
            CONVEXT_DOT_TAPS(5) CONVEXT_DOT_TAPS(6) CONVEXT_DOT_TAPS(7) CONVEXT_DOT_TAPS(8)
            CONVEXT_DOT_TAPS(9)
#undef CONVEXT_DOT_TAPS
        }
    }
}

// ---- Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms, on one panel of NR tiles (lanes) ----

// (B^T x)[0..3] for four vectors: F(2x2, 3x3), entries 0 and +-1 only.
template <class V>
inline void bt4(const V* x, V* o) {
    o[0] = x[0] - x[2];
    o[1] = x[1] + x[2];
    o[2] = x[2] - x[1];
    o[3] = x[1] - x[3];
}

// (A^T x)[0..1] for four vectors.
template <class V>
inline void at4(const V* x, V* o) {
    o[0] = x[0] + x[1] + x[2];
    o[1] = x[1] - x[2] - x[3];
}

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

// The two-pass 2-D transform of the Winograd tiles: dst = F src F^T for an
// In x In tile of vectors (element (i, j) at src + (i*In + j)*src_stride,
// both halves h of an NR panel) to Out x Out (at dst + (i*Out + j)*dst_stride),
// with f applying F (Out x In) to In vectors: columns first, then rows.
template <int In, int Out, class T, class F>
inline void transform_tile(const T* src, index_t src_stride, T* dst, index_t dst_stride, F f) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    for (int h = 0; h < 2; ++h) {
        V e[Out * In];  // F src: Out x In
        for (int j = 0; j < In; ++j) {
            V col[In], out[Out];
            for (int i = 0; i < In; ++i) col[i] = vload(src + (i * In + j) * src_stride + h * L);
            f(col, out);
            for (int i = 0; i < Out; ++i) e[i * In + j] = out[i];
        }
        for (int i = 0; i < Out; ++i) {
            V out[Out];
            f(e + i * In, out);
            for (int j = 0; j < Out; ++j) vstore(dst + (i * Out + j) * dst_stride + h * L, out[j]);
        }
    }
}

// v[xi * v_stride + lane] = (B^T d B)[xi] with d[(i*a + j) * NR + lane] (a = 6, 4).
template <class T>
void winograd_input_4x4(const T* d, T* v, index_t v_stride) {
    transform_tile<6, 6>(d, kNR<T>, v, v_stride, [](const auto* x, auto* o) { bt6(x, o); });
}
template <class T>
void winograd_input_2x2(const T* d, T* v, index_t v_stride) {
    transform_tile<4, 4>(d, kNR<T>, v, v_stride, [](const auto* x, auto* o) { bt4(x, o); });
}

// y[(i*m + j) * NR + lane] = (A^T m A)[i][j] with m[xi * m_stride + lane] (m = 4, 2).
template <class T>
void winograd_output_4x4(const T* m, index_t m_stride, T* y) {
    transform_tile<6, 4>(m, m_stride, y, kNR<T>, [](const auto* x, auto* o) { at6(x, o); });
}
template <class T>
void winograd_output_2x2(const T* m, index_t m_stride, T* y) {
    transform_tile<4, 2>(m, m_stride, y, kNR<T>, [](const auto* x, auto* o) { at4(x, o); });
}

}  // namespace

// Pack an A block into MR-row panels (see Kernel::pack_a). Compiled per ISA
// with MR a constant, so that the row loop unrolls and vectorises (a runtime
// MR made the GEMM weight gradients 15-20% slower).
template <class T>
void pack_a(index_t m, index_t kc, const T* A, index_t rs, index_t cs, T* Ap) {
    for (index_t i0 = 0; i0 < m; i0 += kMR, Ap += kc * kMR) {
        const index_t rows = m - i0 < kMR ? m - i0 : kMR;
        const T* __restrict src = A + i0 * rs;
        T* __restrict dst = Ap;
        if (rows == kMR) {
            for (index_t j = 0; j < kc; ++j)
#pragma GCC unroll 16
                for (int i = 0; i < kMR; ++i) dst[j * kMR + i] = src[i * rs + j * cs];
            continue;
        }
        for (index_t j = 0; j < kc; ++j)
            for (int i = 0; i < kMR; ++i) dst[j * kMR + i] = i < rows ? src[i * rs + j * cs] : T(0);
    }
}

// dst[k*ldd + j] = src[j*lds + k] for j, k < 8: three rounds of pairwise
// interleaves (blocks of 1, 2, 4), 24 shuffles for 64 values.
template <class T>
inline void transpose8(const T* src, index_t lds, T* dst, index_t ldd) {
    using V8 = typename Vec8<T>::type;
    V8 r[8], p[8], q[8];
    for (int j = 0; j < 8; ++j) __builtin_memcpy(&r[j], src + j * lds, sizeof(V8));
    for (int i = 0; i < 8; i += 2) {  // p[i]: k 0-3 of rows i, i+1 interleaved; p[i+1]: k 4-7
        p[i] = CONVEXT_SHUFFLE8(T, r[i], r[i + 1], 0, 8, 1, 9, 2, 10, 3, 11);
        p[i + 1] = CONVEXT_SHUFFLE8(T, r[i], r[i + 1], 4, 12, 5, 13, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4)  // q[i + m]: k = 2m, 2m+1 of rows i..i+3
        for (int h = 0; h < 2; ++h) {
            const V8 a = p[i + h], b = p[i + 2 + h];
            q[i + 2 * h] = CONVEXT_SHUFFLE8(T, a, b, 0, 1, 8, 9, 2, 3, 10, 11);
            q[i + 2 * h + 1] = CONVEXT_SHUFFLE8(T, a, b, 4, 5, 12, 13, 6, 7, 14, 15);
        }
    for (int m = 0; m < 4; ++m) {  // columns 2m, 2m+1: rows 0-3 from q[m], 4-7 from q[4+m]
        const V8 c0 = CONVEXT_SHUFFLE8(T, q[m], q[4 + m], 0, 1, 2, 3, 8, 9, 10, 11);
        const V8 c1 = CONVEXT_SHUFFLE8(T, q[m], q[4 + m], 4, 5, 6, 7, 12, 13, 14, 15);
        __builtin_memcpy(dst + (2 * m) * ldd, &c0, sizeof(V8));
        __builtin_memcpy(dst + (2 * m + 1) * ldd, &c1, sizeof(V8));
    }
}

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
            // 8 x 8 blocks transposed in registers (transpose8), where NR
            // is a multiple of 8 (not the generic kernel's 4 doubles)
            index_t k0 = 0;
            for (; NR % 8 == 0 && k0 + 8 <= kc; k0 += 8)
                for (int j8 = 0; j8 < NR; j8 += 8)
                    transpose8(src + j8 * ld + k0, ld, dst + k0 * NR + j8, NR);
            for (index_t k = k0; k < kc; ++k)
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

// (A y)[0..3] for two vectors (F(2x2, 3x3)).
template <class V>
inline void a4(const V* y, V* o) {
    o[0] = y[0];
    o[1] = y[0] + y[1];
    o[2] = y[0] - y[1];
    o[3] = -y[1];
}

// z[xi * z_stride + lane] = (A g A^T)[xi] for m x m output-gradient tiles
// g[(i*m + j) * NR + lane]: the adjoint of winograd_output (weight gradient).
template <class T>
void winograd_grad_output_4x4(const T* g, T* z, index_t z_stride) {
    transform_tile<4, 6>(g, kNR<T>, z, z_stride, [](const auto* y, auto* o) { a6(y, o); });
}
template <class T>
void winograd_grad_output_2x2(const T* g, T* z, index_t z_stride) {
    transform_tile<2, 4>(g, kNR<T>, z, z_stride, [](const auto* y, auto* o) { a4(y, o); });
}

// dst[q] = src[2*q], q < n: the patch gather of stride-2 layers (the
// compiler vectorises the constant-stride loop for this ISA).
template <class T>
void copy_stride2(index_t n, const T* __restrict src, T* __restrict dst) {
    for (index_t q = 0; q < n; ++q) dst[q] = src[2 * q];
}

// dst[2q] = a[q], dst[2q + 1] = b[q], q < n: the stride-2 phases of a row
// put back together.
template <class T>
void interleave2(index_t n, const T* __restrict a, const T* __restrict b, T* __restrict dst) {
    for (index_t q = 0; q < n; ++q) dst[2 * q] = a[q], dst[2 * q + 1] = b[q];
}

// dst[q] += src[q], q < n.
template <class T>
void add_to(index_t n, const T* __restrict src, T* __restrict dst) {
    for (index_t q = 0; q < n; ++q) dst[q] += src[q];
}

// max |src[q]| over q < n, or +inf if some value is Inf or NaN (a * 0 stays
// 0 for every finite a). Vector types: strict IEEE semantics would keep the
// compiler from vectorising these reductions itself.
template <class T>
T max_abs(index_t n, const T* src) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    V m = {}, z = {};
    index_t q = 0;
    for (; q + L <= n; q += L) {
        const V a = vload(src + q);
        const V v = a < T(0) ? -a : a;
        m = v > m ? v : m;
        z += a * T(0);
    }
    T mm = T(0), zz = T(0);
    for (int l = 0; l < L; ++l) mm = m[l] > mm ? m[l] : mm, zz += z[l];
    for (; q < n; ++q) {
        const T v = src[q] < T(0) ? -src[q] : src[q];
        mm = v > mm ? v : mm, zz += src[q] * T(0);
    }
    return zz == T(0) ? mm : T(__builtin_inf());
}

// dst[q] = src[q] + b, q < n; dst may be src.
template <class T>
void add_scalar(index_t n, const T* src, T b, T* dst) {
    for (index_t q = 0; q < n; ++q) dst[q] = src[q] + b;
}

// ---- max pooling: one output row, every window tap in scan order ----
//
// rows[t][q] is tap t's value for output q (-inf where the tap falls in the
// padding), t < ntaps in PyTorch's scan order, rows readable up to
// round_up(wo, lanes). out[q] = the running max with PyTorch's rule (take a
// value when it is greater or NaN); tap[q] = the winning tap, -1 if none
// was taken (a window of -inf only). Branch-free: a select per tap.
template <class T>
void max_pool_row(index_t wo, index_t ntaps, const T* const* rows, T* out,
                  typename IntOf<T>::type* tap) {
    using V = typename Vec<T>::type;
    using I = typename IntOf<T>::type;
    typedef I VI __attribute__((vector_size(CONVEXT_VBYTES)));
    constexpr int L = kLanes<T>;
    for (index_t q = 0; q < wo; q += L) {
        V m = splat(-static_cast<T>(__builtin_inf()));
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

// A KB x JB tile (CONVEXT_DOT_K x CONVEXT_DOT_J) of the weight gradient's dot products over
// n values, lane-wise: acc[(i*JB + j)*L + l] += lane l of
// sum_q dy[i][q] * x[j][q]. The KB dy vectors stay in registers; the x
// vectors are loaded one at a time (KB*JB accumulators + KB + 1 registers).
template <class T>
void dot_tile(index_t n, const T* const* dy, const T* const* x, T* acc) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>, KB = CONVEXT_DOT_K, JB = CONVEXT_DOT_J;
    static_assert(KB <= kMaxDot && JB <= kMaxDot);
    V a[KB][JB];
    for (int i = 0; i < KB; ++i)
        for (int j = 0; j < JB; ++j) a[i][j] = vload(acc + (i * JB + j) * L);
    auto step = [&](const T* const* d_rows, const T* const* x_rows, index_t q) {
        V d[KB];
        for (int i = 0; i < KB; ++i) {
            d[i] = vload(d_rows[i] + q);
            CONVEXT_IN_REGISTER(d[i]);
        }
        for (int j = 0; j < JB; ++j) {
            V xv = vload(x_rows[j] + q);
            CONVEXT_IN_REGISTER(xv);
            for (int i = 0; i < KB; ++i) a[i][j] += d[i] * xv;
        }
    };
    index_t q = 0;
    for (; q + L <= n; q += L) step(dy, x, q);
    if (q < n) {  // the last n % L values, zero padded: nothing past n is read
        T tail[KB + JB][L] = {};
        const T* rows[KB + JB];
        for (int i = 0; i < KB + JB; ++i) {
            const T* src = i < KB ? dy[i] : x[i - KB];
            std::copy(src + q, src + n, tail[i]);
            rows[i] = tail[i];
        }
        step(rows, rows + KB, 0);
    }
    for (int i = 0; i < KB; ++i)
        for (int j = 0; j < JB; ++j) vstore(acc + (i * JB + j) * L, a[i][j]);
}

// acc[l] += the sum of src[q] over q < n, q = l mod L (L = lanes; two
// vectors of partial sums, so that neighbouring adds do not wait on each
// other).
template <class T>
void lane_add(index_t n, const T* src, T* acc) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    V a = vload(acc), b{};
    index_t q = 0;
    for (; q + 2 * L <= n; q += 2 * L) a += vload(src + q), b += vload(src + q + L);
    for (; q + L <= n; q += L) a += vload(src + q);
    T tail[L] = {};
    std::copy(src + q, src + n, tail);
    vstore(acc, a + vload(tail) + b);
}

// Sum of the Bytes/sizeof(T) values at p by halving: lanes [0, h) + [h, 2h),
// in vector registers.
template <class T, int Bytes>
inline T halving_sum(const T* p) {
    constexpr int half = Bytes / 2 / int(sizeof(T));
    if constexpr (half == 1) {
        return p[0] + p[1];
    } else {
        typedef T H __attribute__((vector_size(Bytes / 2)));
        H a, b;
        __builtin_memcpy(&a, p, sizeof a);
        __builtin_memcpy(&b, p + half, sizeof b);
        a += b;
        T h[half];
        __builtin_memcpy(h, &a, sizeof a);
        return halving_sum<T, Bytes / 2>(h);
    }
}

template <class T>
void lane_sums(index_t count, const T* v, T* out) {
    for (index_t o = 0; o < count; ++o) out[o] = halving_sum<T, CONVEXT_VBYTES>(v + o * kLanes<T>);
}

// This ISA's entry of the kernel list (dispatch.cpp), named by the caller.
// constexpr, and the tables are constexpr: they are built by the compiler, so
// no code of an ISA file runs when the module loads, before dispatch.cpp has
// checked the CPU (a dynamic initializer compiled with -mavx512f used zmm
// registers and crashed the import on AVX2-only CPUs).
template <class T>
constexpr Kernel<T> make_kernel(const char* name) {
    Kernel<T> k;
    k.name = name;
    k.lanes = kLanes<T>;
    k.gemm.mr = kMR;
    k.gemm.nr = kNR<T>;
    k.gemm.macro = macro_kernel<T>;
    k.gemm.macro_indirect = macro_indirect<T>;
    k.gemm.pack_a = pack_a<T>;
    k.gemm.pack_b_cols = pack_b_cols<T>;
    k.direct.corr_rows = corr_rows<T>;
    k.direct.corr_taps = corr_taps<T>;
    k.dot.taps = dot_taps<T>;
    k.dot.k = CONVEXT_DOT_K;
    k.dot.j = CONVEXT_DOT_J;
    k.dot.tile = dot_tile<T>;
    k.winograd_2x2.input = winograd_input_2x2<T>;
    k.winograd_2x2.output = winograd_output_2x2<T>;
    k.winograd_2x2.grad_output = winograd_grad_output_2x2<T>;
    k.winograd_4x4.input = winograd_input_4x4<T>;
    k.winograd_4x4.output = winograd_output_4x4<T>;
    k.winograd_4x4.grad_output = winograd_grad_output_4x4<T>;
    k.pool.max_row = max_pool_row<T>;
    k.vec.copy_stride2 = copy_stride2<T>;
    k.vec.interleave2 = interleave2<T>;
    k.vec.add_to = add_to<T>;
    k.vec.add_scalar = add_scalar<T>;
    k.vec.lane_add = lane_add<T>;
    k.vec.lane_sums = lane_sums<T>;
    k.vec.max_abs = max_abs<T>;
    return k;
}

}  // namespace CONVEXT_KERNEL_NS
}  // namespace convext::gemm
