// Packed GEMM building blocks in the BLIS style.
//
//   C[m x n] (+)= A[m x k] * B[k x n]
//
// A is packed into row panels of MR rows ("Ap": for each panel, k columns of
// MR values), B either into column panels of NR columns ("Bp": for each panel,
// k rows of NR values; zero padded at the edges) or read in place, row k of B
// at b + off[k] (the indirect GEMM of the convolutions: their B rows are
// unit-stride runs of an input buffer). The register-tile micro-kernel and
// the loop around it ("macro-kernel") are per-ISA and chosen once at load
// time.
#pragma once

#include "core/common.hpp"

#include <cstdint>
#include <type_traits>

namespace convext::gemm {

// One struct per kernel family (XNNPACK's config per family), each filled by
// field name in the ISA's make_kernel; Kernel<T> holds one of each.

// The packed GEMM.
template <class T>
struct GemmKernel {
    int mr = 0, nr = 0;  // register tile: A is packed in mr-row panels, B in nr-column panels
    // C[m x n] = (accumulate ? C : 0) + Ap[m x kc] * Bp[kc x n], m and n of any size.
    void (*macro)(index_t m, index_t n, index_t kc, const T* Ap, const T* Bp, T* C,
                  index_t ldc, bool accumulate) = nullptr;
    // The same with B read in place (indirect GEMM, no pack): row k of B is
    // the n values at b + off[k], each readable up to round_up(n, nr).
    void (*macro_indirect)(index_t m, index_t n, index_t kc, const T* Ap, const T* b,
                           const index_t* off, T* C, index_t ldc, bool accumulate) = nullptr;
    // Pack rows [0, m) x cols [0, kc) of a matrix with element (i, j) at
    // A[i*rs + j*cs] into mr-row panels, zero padded to round_up(m, mr).
    void (*pack_a)(index_t m, index_t kc, const T* A, index_t rs, index_t cs, T* Ap) = nullptr;
    // Pack a B block given by columns: column j < n is the kc values at
    // cols + j*ld; nr-column panels, zero padded to round_up(n, nr).
    void (*pack_b_cols)(index_t kc, index_t n, const T* cols, index_t ld, T* Bp) = nullptr;
};

// The direct correlation loop.
template <class T>
struct DirectKernel {
    // Direct correlation of `rows` output rows of kb <= 4 output channels
    // (the loop for layers with too few output channels per group for a GEMM
    // tile): for j < kb,
    //   y[j*y_step + i*wo + q] = init[j] + sum_{c<cg, r<R, s<S} w[j*w_step + (c*R + r)*S + s]
    //        * patch[i*row_step + c*c_stride + r*r_stride + s*s_stride + q],  q < wo.
    // The patch must be readable up to q = round_up(wo, nr) (zero padded).
    void (*corr_rows)(index_t wo, index_t rows, index_t kb, index_t cg, index_t R, index_t S,
                      const T* w, index_t w_step, const T* patch, index_t row_step,
                      index_t c_stride, index_t r_stride, index_t s_stride, const T* init, T* y,
                      index_t y_step) = nullptr;
    // One output channel over a flattened plane, each tap at its own offset
    // (any stride or dilation, through stride-phase planes):
    //   y[q] = init + sum_{t<taps} w[t] * src[off[t] + q],  q < n,
    // taps summed in order. src readable up to off[t] + round_up(n, lanes),
    // y writable up to round_up(n, lanes).
    void (*corr_taps)(index_t n, index_t taps, const T* w, const T* src, const index_t* off,
                      T init, T* y) = nullptr;
};

// Dot products of the depthwise and dot-product weight gradients.
template <class T>
struct DotKernel {
    // acc[(r*S + s)*lanes + l] += lane l of
    //     sum_i sum_{q<wq} dy[i][q] * x[i*R + r][q + s*s_stride]
    // for r < R, s < S over `rows` output rows (depthwise weight gradient:
    // x[i*R + r] is the input row filter row r meets; wq a multiple of lanes).
    void (*taps)(index_t rows, index_t wq, index_t R, index_t S, const T* const* dy,
                 const T* const* x, index_t s_stride, T* acc) = nullptr;
    // A k x j tile of weight-gradient dot products over n values, lane-wise
    // (L = lanes), a < k, b < j:
    //   acc[(a*j + b)*L + l] += lane l of sum_{q<n} dy[a][q] * x[b][q]
    // (lane l sums the q = l mod L; nothing past q = n is read).
    int k = 0, j = 0;
    void (*tile)(index_t n, const T* const* dy, const T* const* x, T* acc) = nullptr;
};

// Winograd F(m x m, 3x3) transforms of one panel of nr tiles (lanes): input
// tiles of a = m + 2 rows and columns, a*a transformed positions xi, output
// tiles m x m (one instance for m = 2, one for m = 4).
template <class T>
struct WinogradKernel {
    // v[xi*v_stride + l] = (B^T d_l B)[xi] for a x a input tiles d[(i*a + j)*nr + l].
    void (*input)(const T* d, T* v, index_t v_stride) = nullptr;
    // y[(i*m + j)*nr + l] = (A^T m_l A)[i][j] for m[xi*m_stride + l].
    void (*output)(const T* m, index_t m_stride, T* y) = nullptr;
    // z[xi*z_stride + l] = (A g_l A^T)[xi] for m x m tiles g[(i*m + j)*nr + l].
    void (*grad_output)(const T* g, T* z, index_t z_stride) = nullptr;
};

// Pooling rows.
template <class T>
struct PoolKernel {
    // TapIndex is int32 for float, int64 for double.
    using TapIndex = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    // One output row of a max pool over `ntaps` tap rows (PyTorch's rule);
    // tap[q] = winning tap or -1.
    void (*max_row)(index_t wo, index_t ntaps, const T* const* rows, T* out,
                    TapIndex* tap) = nullptr;
};

// Vectorised row operations.
template <class T>
struct VectorKernel {
    // dst[q] = src[2*q] for q < n (stride-2 patch gathers).
    void (*copy_stride2)(index_t n, const T* src, T* dst) = nullptr;
    // dst[2q] = a[q], dst[2q + 1] = b[q] for q < n (stride-2 input gradients).
    void (*interleave2)(index_t n, const T* a, const T* b, T* dst) = nullptr;
    // dst[q] += src[q] for q < n (shifted adds).
    void (*add_to)(index_t n, const T* src, T* dst) = nullptr;
    // dst[q] = src[q] + b for q < n (dst may be src): bias and copy-out.
    void (*add_scalar)(index_t n, const T* src, T b, T* dst) = nullptr;
    // acc[l] += sum of src[q] over q < n with q = l mod lanes (l < lanes).
    void (*lane_add)(index_t n, const T* src, T* acc) = nullptr;
    // out[o] = the sum of the lanes of vector o, v[o*L + l] (l < L), o < count;
    // out may be v.
    void (*lane_sums)(index_t count, const T* v, T* out) = nullptr;
    // max |src[q]| over q < n; +inf if some value is Inf or NaN.
    T (*max_abs)(index_t n, const T* src) = nullptr;
};

// Every kernel family of one ISA and dtype.
template <class T>
struct Kernel {
    using TapIndex = typename PoolKernel<T>::TapIndex;
    const char* name = nullptr;  // e.g. "sgemm_6x16__avx2_fma": what it computes, where it runs
    int lanes = 0;               // values in one vector register
    GemmKernel<T> gemm;
    DirectKernel<T> direct;
    DotKernel<T> dot;
    WinogradKernel<T> winograd_2x2, winograd_4x4;  // F(2x2, 3x3), F(4x4, 3x3)
    PoolKernel<T> pool;
    VectorKernel<T> vec;
};

// Largest dot tile side of any kernel (dot_k, dot_j).
constexpr int kMaxDot = 8;

// The kernel chosen for this CPU (set CONVEXT_ISA=generic to force the fallback).
template <class T>
const Kernel<T>& kernel();

// Every kernel compiled into this build and runnable on this CPU (for tests).
const char* isa_name();           // "avx2_fma" or "generic"
const char* available_isas();     // comma separated

// Blocking. KC: depth of one packed block (A strip kc x MR ~ 6 KiB, B micro
// panel kc x NR ~ 16 KiB: in L1 with room to spare). NC: columns of a packed
// B block (~192 KiB: L2). MC: rows of A run against one B block.
template <class T>
constexpr index_t kKC = 256;
template <class T>
constexpr index_t kNC = 196608 / (256 * index_t(sizeof(T)));
constexpr index_t kMC = 120;  // a multiple of every kernel's mr (6, 8, 12)

// Size of a packed A block / B block.
inline index_t packed_a_size(index_t m, index_t kc, int mr) { return round_up(m, mr) * kc; }
inline index_t packed_b_size(index_t n, index_t kc, int nr) { return round_up(n, nr) * kc; }

}  // namespace convext::gemm
