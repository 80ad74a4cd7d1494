// Winograd F(m x m, 3x3) for the 3x3, stride-1, undilated correlations (the
// forward pass and the input gradient of ResNet-style layers), m = 2 or 4.
//
// Each m x m block of outputs of one (image, output channel) is
//     Y = A^T [ sum_c (G w_kc G^T) . (B^T d_c B) ] A
// with d_c the (m+2) x (m+2) input tile of channel c: (m+2)^2 multiplications
// per tile and channel pair instead of 9 m^2 (Lavin & Gray, "Fast Algorithms
// for Convolutional Neural Networks", 2016): 2.25x fewer for F(2x2), 4x for
// F(4x4). The sum over c is, for each transformed position xi, a GEMM
// U_xi (Kg x Cg) * V_xi (Cg x tiles), run on the same packed micro-kernels as
// the other GEMM paths.
//
// Error: F(2x2)'s transforms have entries 0, +-1 and +-1/2, and its float32
// results are about as exact as a direct sum; F(4x4)'s scale values by up to
// ~10 and cancel, which makes them about 20x less exact (README: error bounds).
#include "conv2d/winograd.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "kernels/kernel.hpp"
#include "core/parallel.hpp"
#include "core/scan.hpp"

namespace convext {
namespace {

constexpr index_t kChannelBlock = 64;  // channels transformed per GEMM depth block

// The filter-side transforms of F(m x m, 3x3), lane by lane, and the ISA's
// tile transforms: G (a x 3) applied to the rows a, b, c of 3 x lanes
// values, and G^T (3 x a) applied to a rows (the weight gradient).
template <int M>
struct Tile;

template <>
struct Tile<2> {
    template <class T>
    static const gemm::WinogradKernel<T>& kernel(const gemm::Kernel<T>& k) { return k.winograd_2x2; }
    template <class T>
    static void g_rows(const T* a, const T* b, const T* c, T* const* o, index_t lanes) {
        const T h = T(0.5);
        for (index_t l = 0; l < lanes; ++l) {
            const T al = a[l], bl = b[l], cl = c[l];
            o[0][l] = al;
            o[1][l] = h * (al + bl + cl);
            o[2][l] = h * (al - bl + cl);
            o[3][l] = cl;
        }
    }
    template <class T>
    static void gt_rows(const T* const* v, T* const* o, index_t lanes) {
        const T h = T(0.5);
        for (index_t l = 0; l < lanes; ++l) {
            const T s12 = v[1][l] + v[2][l];
            o[0][l] = v[0][l] + h * s12;
            o[1][l] = h * (v[1][l] - v[2][l]);
            o[2][l] = h * s12 + v[3][l];
        }
    }
};

template <>
struct Tile<4> {
    template <class T>
    static const gemm::WinogradKernel<T>& kernel(const gemm::Kernel<T>& k) { return k.winograd_4x4; }
    // G from Lavin & Gray, by reciprocals.
    template <class T>
    static void g_rows(const T* a, const T* b, const T* c, T* const* o, index_t lanes) {
        const T q = T(1) / T(4), s = T(1) / T(6), t = T(1) / T(12), u = T(1) / T(24);
        for (index_t l = 0; l < lanes; ++l) {
            const T al = a[l], bl = b[l], cl = c[l];
            o[0][l] = q * al;
            o[1][l] = -s * (al + bl + cl);
            o[2][l] = -s * (al - bl + cl);
            o[3][l] = u * al + t * bl + s * cl;
            o[4][l] = u * al - t * bl + s * cl;
            o[5][l] = cl;
        }
    }
    template <class T>
    static void gt_rows(const T* const* v, T* const* o, index_t lanes) {
        const T q = T(1) / T(4), s6 = T(1) / T(6), s12 = T(1) / T(12), s24 = T(1) / T(24);
        for (index_t l = 0; l < lanes; ++l) {
            const T a12 = v[1][l] + v[2][l], d21 = v[2][l] - v[1][l];
            const T a34 = v[3][l] + v[4][l], d34 = v[3][l] - v[4][l];
            o[0][l] = q * v[0][l] - s6 * a12 + s24 * a34;
            o[1][l] = s6 * d21 + s12 * d34;
            o[2][l] = s6 * (a34 - a12) + v[5][l];
        }
    }
};

}  // namespace

template <int M, class T>
void correlate_winograd(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    constexpr int kOut = M, kIn = M + 2, kXi = kIn * kIn;
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const gemm::WinogradKernel<T>& wk = Tile<M>::kernel(kern);
    const int mr = kern.gemm.mr, nt = kern.gemm.nr;  // one B panel of nt tiles per task
    const index_t Kg = p.Kg(), Cg = p.Cg();
    const index_t Kg_up = round_up(Kg, mr);
    const index_t tiles_h = ceil_div(p.Ho, kOut), tiles_w = ceil_div(p.Wo, kOut);
    const index_t tiles = checked_mul(p.N, tiles_h * tiles_w, "conv2d");
    const index_t blocks = ceil_div(tiles, nt);
    const char* op = "conv2d";

    // U_xi = (G w G^T)[xi] for every filter (k, c), kLanes filters at a time,
    // written straight into the GEMM's packed A panels: for each (group, xi)
    // and channel block, mr-row panels of the group's Kg filters.
    constexpr index_t kLanes = 64;
    const index_t filters = p.K * Cg;
    const index_t per_xi = Kg_up * Cg;  // packed A of one (group, xi)
    Buffer<T> upack(checked_mul(p.groups * kXi, per_xi, op), "packed Winograd filters");
    if (Kg % mr) std::fill(upack.data(), upack.data() + upack.size(), T(0));  // panel padding
    parallel_for(ceil_div(filters, kLanes), [&](index_t blk, int) {
        const index_t f0 = blk * kLanes, n = std::min(kLanes, filters - f0);
        T g[9][kLanes], t[3][kIn][kLanes], u[kXi][kLanes];
        for (index_t l = 0; l < n; ++l)
            for (int i = 0; i < 9; ++i) g[i][l] = w[(f0 + l) * 9 + i];
        for (int j = 0; j < 3; ++j) {  // t[j] = G g[:, j]
            T* out[kIn];
            for (int i = 0; i < kIn; ++i) out[i] = t[j][i];
            Tile<M>::g_rows(g[j], g[3 + j], g[6 + j], out, n);
        }
        for (int i = 0; i < kIn; ++i) {  // row i of (G g) G^T
            T* out[kIn];
            for (int j = 0; j < kIn; ++j) out[j] = u[i * kIn + j];
            Tile<M>::g_rows(t[0][i], t[1][i], t[2][i], out, n);
        }
        index_t at[kLanes];  // where filter f0 + l goes in the panels of xi = 0
        for (index_t l = 0; l < n; ++l) {
            const index_t k = (f0 + l) / Cg, c = (f0 + l) % Cg, grp = k / Kg, kk = k % Kg;
            const index_t c0 = c / kChannelBlock * kChannelBlock;
            const index_t kc = std::min(kChannelBlock, Cg - c0);
            at[l] = grp * kXi * per_xi + Kg_up * c0 + kk / mr * kc * mr + (c - c0) * mr + kk % mr;
        }
        for (int xi = 0; xi < kXi; ++xi) {  // consecutive filters land mr apart
            T* dst = upack.data() + xi * per_xi;
            for (index_t l = 0; l < n; ++l) dst[at[l]] = u[xi][l];
        }
    }, kLanes * kXi * 4);

    // Per thread: the 6x6 input tiles of nt tiles (d), their transforms packed
    // as B panels for every xi (v), and the GEMM results for every xi (m).
    const index_t d_size = kXi * nt, v_size = kXi * kChannelBlock * nt, m_size = kXi * Kg * nt;
    const index_t seg_len = kOut * nt + kIn;  // one input row under a run of tiles
    const index_t per_thread = 2 * d_size + v_size + m_size + seg_len;
    const index_t tasks = p.groups * blocks;
    Buffer<T> scratch(checked_mul(threads_for(tasks), per_thread, op), "Winograd tiles");

    parallel_for(tasks, [&](index_t task, int tid) {
        const index_t g = task / blocks, t0 = (task % blocks) * nt;
        const index_t lanes = std::min<index_t>(nt, tiles - t0);
        T* d = scratch.data() + tid * per_thread;
        T* e = d + d_size;
        T* v = e + d_size;
        T* m = v + v_size;
        T* seg = m + m_size;

        // Where each lane's tile sits: image, top-left output row and column.
        // Lanes past the last tile repeat it (computed, never stored).
        index_t tn[64], toh[64], tow[64];
        for (index_t l = 0; l < nt; ++l) {
            const index_t t = t0 + std::min(l, lanes - 1);
            tn[l] = t / (tiles_h * tiles_w);
            toh[l] = (t / tiles_w) % tiles_h * kOut;
            tow[l] = t % tiles_w * kOut;
        }

        for (index_t c0 = 0; c0 < Cg; c0 += kChannelBlock) {
            const index_t kc = std::min(kChannelBlock, Cg - c0);
            for (index_t c = 0; c < kc; ++c) {
                // Gather the input tiles, d[(i*kIn + j)*nt + lane], zero outside x.
                // Lanes of one tile row form a run: copy each of its six input
                // rows once into a zero-padded segment, then pick the tiles.
                for (index_t l0 = 0, l1; l0 < nt; l0 = l1) {
                    l1 = l0 + 1;
                    while (l1 < nt && tn[l1] == tn[l0] && toh[l1] == toh[l0] &&
                           tow[l1] == tow[l1 - 1] + kOut)
                        ++l1;
                    const T* xc = x + (tn[l0] * p.C + g * Cg + c0 + c) * p.H * p.W;
                    const index_t col0 = tow[l0] - p.pad.w, len = kOut * (l1 - l0) + 2;
                    const index_t a = std::clamp<index_t>(-col0, 0, len);
                    const index_t b = std::clamp<index_t>(p.W - col0, a, len);
                    for (int i = 0; i < kIn; ++i) {
                        const index_t ih = toh[l0] + i - p.pad.h;
                        if (ih < 0 || ih >= p.H) {
                            std::fill(seg, seg + len, T(0));
                        } else {
                            const T* row = xc + ih * p.W + col0;
                            std::fill(seg, seg + a, T(0));
                            std::copy(row + a, row + b, seg + a);
                            std::fill(seg + b, seg + len, T(0));
                        }
                        for (int j = 0; j < kIn; ++j) {
                            T* dij = d + (i * kIn + j) * nt;
                            for (index_t l = l0; l < l1; ++l) dij[l] = seg[kOut * (l - l0) + j];
                        }
                    }
                }
                // V = B^T d B, lanes = tiles; V[xi] goes to panel xi at depth c.
                wk.input(d, v + c * nt, kChannelBlock * nt);
            }
            for (int xi = 0; xi < kXi; ++xi)
                kern.gemm.macro(Kg, nt, kc, upack.data() + (g * kXi + xi) * per_xi + Kg_up * c0,
                           v + xi * kChannelBlock * nt, m + xi * Kg * nt, nt, c0 > 0);
        }

        // Y = A^T M A per output channel, scattered to the tiles' positions.
        for (index_t k = 0; k < Kg; ++k) {
            T* out = e;  // (A^T M A): kOut x kOut rows of nt lanes
            wk.output(m + k * nt, Kg * nt, out);
            const T b = bias ? bias[g * Kg + k] : T(0);
            for (index_t l = 0; l < lanes; ++l) {
                T* yk = y + ((tn[l] * p.K + g * Kg + k) * p.Ho) * p.Wo;
                const index_t ih = std::min<index_t>(kOut, p.Ho - toh[l]);
                const index_t iw = std::min<index_t>(kOut, p.Wo - tow[l]);
                for (index_t i = 0; i < ih; ++i)
                    for (index_t j = 0; j < iw; ++j)
                        yk[(toh[l] + i) * p.Wo + tow[l] + j] = out[(i * kOut + j) * nt + l] + b;
            }
        }
    }, kXi * Kg * Cg * nt);
}

// Weight gradient, the adjoint of the forward transform: with Z_t = the
// transformed-domain product of tile t, dL/dU = sum_t (A dY_t A^T) . V_t and
// dw = G^T (dL/dU) G. For each xi the sum over tiles is a GEMM
//     M_xi (Cg x Kg) = V_xi (Cg x tiles) * Yhat_xi (tiles x Kg),
// accumulated over fixed chunks of tiles in order (deterministic). The
// transforms run with lanes over channels, so that their results are already
// rows of the GEMM's packed panels. Row 1 of A is all ones, so element
// xi = (1, 1) of A dY_t A^T is the sum of the tile: the bias gradient is the
// sum of those over the tiles, read off the packed panels.
template <int M, class T>
void weight_grad_winograd(const Conv2dGeometry& g, const T* dy, const T* x, T* dw, T* db) {
    constexpr int kOut = M, kIn = M + 2, kXi = kIn * kIn;
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const gemm::WinogradKernel<T>& wk = Tile<M>::kernel(kern);
    const int mr = kern.gemm.mr, nt = kern.gemm.nr;
    const index_t Kg = g.Kg(), Cg = g.Cg();
    const index_t tiles_h = ceil_div(g.Ho, kOut), tiles_w = ceil_div(g.Wo, kOut);
    const index_t tiles = checked_mul(g.N, tiles_h * tiles_w, "conv2d_weight_grad");
    constexpr index_t TC = 32;  // tiles per chunk: the GEMMs' depth (A/B, res3x3 rows: 32 beat 16, 64, 128, 256)
    const index_t Cg_up = round_up(Cg, mr), Kg_up = round_up(Kg, nt);
    const index_t cblocks = ceil_div(Cg, nt), kblocks = ceil_div(Kg, nt);
    const char* op = "conv2d_weight_grad";

    Buffer<T> ap(checked_mul(kXi * Cg_up, TC, op), "Winograd input panels");
    Buffer<T> bp(checked_mul(kXi * Kg_up, TC, op), "Winograd gradient panels");
    Buffer<T> m(checked_mul(kXi * Cg, Kg, op), "Winograd weight gradient");
    const index_t per_thread = 2 * kXi * nt;
    Buffer<T> scratch(checked_mul(threads_for(TC), per_thread, op), "Winograd tiles");

    constexpr int kSumXi = 1 * kIn + 1;  // (1, 1): the tile sums
    if (db) std::fill(db, db + g.K, T(0));
    for (index_t grp = 0; grp < g.groups; ++grp) {
        for (index_t t0 = 0; t0 < tiles; t0 += TC) {
            const index_t tc = std::min(TC, tiles - t0);
            // Transform every tile of the chunk (tiles past the end are zero).
            parallel_for(TC, [&](index_t u, int tid) {
                T* d = scratch.data() + tid * per_thread;
                T* z = d + kXi * nt;
                const index_t t = t0 + u;
                const index_t n = t / (tiles_h * tiles_w);
                const index_t toh = (t / tiles_w) % tiles_h * kOut, tow = t % tiles_w * kOut;
                // Which rows / columns of this tile's 6x6 input window exist.
                const index_t ih0 = toh - g.padding.h, iw0 = tow - g.padding.w;
                bool row_in[kIn], col_in[kIn];
                for (int i = 0; i < kIn; ++i) row_in[i] = u < tc && ih0 + i >= 0 && ih0 + i < g.H;
                for (int j = 0; j < kIn; ++j) col_in[j] = iw0 + j >= 0 && iw0 + j < g.W;
                const bool interior = u < tc && ih0 >= 0 && ih0 + kIn <= g.H && iw0 >= 0 &&
                                      iw0 + kIn <= g.W;
                // d[(i*size + j)*nt + l] = src[l*plane + i*ld + j] over a size x size
                // window of nt channels (lanes), 0 for lanes past `lanes` or where
                // !in(i, j); a window wholly inside, full lanes: the ISA's transposing pack.
                auto gather = [&](const T* src, index_t plane, index_t ld, int size, index_t lanes,
                                  bool whole, auto in) {
                    if (whole && lanes == nt) {
                        for (int i = 0; i < size; ++i)
                            kern.gemm.pack_b_cols(size, nt, src + i * ld, plane, d + i * size * nt);
                        return;
                    }
                    for (index_t l = 0; l < nt; ++l)
                        for (int i = 0; i < size; ++i)
                            for (int j = 0; j < size; ++j)
                                d[(i * size + j) * nt + l] =
                                    l < lanes && in(i, j) ? src[l * plane + i * ld + j] : T(0);
                };
                for (index_t cb = 0; cb < cblocks; ++cb) {
                    const index_t lanes = std::min<index_t>(nt, Cg - cb * nt);
                    gather(x + (n * g.C + grp * Cg + cb * nt) * g.H * g.W + ih0 * g.W + iw0, g.H * g.W,
                           g.W, kIn, lanes, interior,
                           [&](int i, int j) { return row_in[i] && col_in[j]; });
                    wk.input(d, z, nt);
                    // Lane l (channel c) goes to row c % mr of A panel c / mr, depth u.
                    index_t at[64];
                    for (index_t l = 0; l < lanes; ++l) {
                        const index_t c = cb * nt + l;
                        at[l] = u * mr + (c / mr * mr) * TC + c % mr;
                    }
                    for (int xi = 0; xi < kXi; ++xi) {
                        T* dst = ap.data() + xi * Cg_up * TC;
                        for (index_t l = 0; l < lanes; ++l) dst[at[l]] = z[xi * nt + l];
                    }
                }
                const index_t oh_n = std::min<index_t>(kOut, g.Ho - toh), ow_n = std::min<index_t>(kOut, g.Wo - tow);
                for (index_t kb = 0; kb < kblocks; ++kb) {
                    const index_t lanes = std::min<index_t>(nt, Kg - kb * nt);
                    gather(dy + (n * g.K + grp * Kg + kb * nt) * g.Ho * g.Wo + toh * g.Wo + tow,
                           g.Ho * g.Wo, g.Wo, kOut, lanes, u < tc && oh_n == kOut && ow_n == kOut,
                           [&](int i, int j) { return u < tc && i < oh_n && j < ow_n; });
                    wk.grad_output(d, bp.data() + (kb * TC + u) * nt, Kg_up * TC);
                }
            }, kXi * (Cg + Kg) * 8);
            for (index_t kb = 0; db && kb < kblocks; ++kb) {  // tile order: u, then t0
                const T* sums = bp.data() + kSumXi * Kg_up * TC + kb * TC * nt;
                T* dbk = db + grp * Kg + kb * nt;
                const index_t lanes = std::min<index_t>(nt, Kg - kb * nt);
                for (index_t u = 0; u < TC; ++u)
                    for (index_t l = 0; l < lanes; ++l) dbk[l] += sums[u * nt + l];
            }
            if (t0 == 0)  // A rows past Cg in the last panel stay zero
                for (int xi = 0; xi < kXi; ++xi)
                    for (index_t c = Cg; c < Cg_up; ++c)
                        for (index_t u = 0; u < TC; ++u)
                            ap[(xi * Cg_up + c / mr * mr) * TC + u * mr + c % mr] = T(0);
            parallel_for(kXi, [&](index_t xi, int) {
                kern.gemm.macro(Cg, Kg, TC, ap.data() + xi * Cg_up * TC, bp.data() + xi * Kg_up * TC,
                           m.data() + xi * Cg * Kg, Kg, t0 > 0);
            }, Cg * Kg * TC);
        }
        // dw = G^T M G per filter, 64 output channels (lanes) at a time: the
        // rows M_xi[c][k0 .. k0 + 64) are contiguous.
        constexpr index_t kLanes = 64;
        const index_t kblk = ceil_div(Kg, kLanes);
        parallel_for(Cg * kblk, [&](index_t t, int) {
            const index_t c = t / kblk, k0 = (t % kblk) * kLanes, n = std::min(kLanes, Kg - k0);
            auto gt = [&](const T* const* v, T* const* o) { Tile<M>::gt_rows(v, o, n); };
            T tr[3][kIn][kLanes], out[3][3][kLanes];
            for (int j = 0; j < kIn; ++j) {  // columns: G^T along i
                const T* v[kIn];
                T* o[3];
                for (int i = 0; i < kIn; ++i) v[i] = m.data() + ((i * kIn + j) * Cg + c) * Kg + k0;
                for (int r = 0; r < 3; ++r) o[r] = tr[r][j];
                gt(v, o);
            }
            for (int r = 0; r < 3; ++r) {  // rows: G along j
                const T* v[kIn];
                T* o[3];
                for (int j = 0; j < kIn; ++j) v[j] = tr[r][j];
                for (int sc = 0; sc < 3; ++sc) o[sc] = out[r][sc];
                gt(v, o);
            }
            for (index_t l = 0; l < n; ++l) {
                T* dst = dw + ((grp * Kg + k0 + l) * Cg + c) * 9;
                for (int r = 0; r < 3; ++r)
                    for (int sc = 0; sc < 3; ++sc) dst[r * 3 + sc] = out[r][sc][l];
            }
        }, kLanes * 200);
    }
}

template <class T>
bool winograd_safe(const T* a, index_t na, const T* b, index_t nb, index_t terms) {
    constexpr T kGrowth = T(1e5);  // above the transforms' largest scaling
    const T ma = max_abs(a, na), mb = max_abs(b, nb), big = std::numeric_limits<T>::max();
    if (ma > big || mb > big) return false;
    if (ma == T(0) || mb == T(0)) return true;
    return ma <= big / kGrowth / T(std::max<index_t>(terms, 1)) / mb;
}

#define CONVEXT_INSTANTIATE(M, T)                                                              \
    template void correlate_winograd<M, T>(const CorrelationPlan&, const T*, const T*, const T*, \
                                           T*);                                                  \
    template void weight_grad_winograd<M, T>(const Conv2dGeometry&, const T*, const T*, T*, T*);
template bool winograd_safe<float>(const float*, index_t, const float*, index_t, index_t);
template bool winograd_safe<double>(const double*, index_t, const double*, index_t, index_t);
CONVEXT_INSTANTIATE(2, float)
CONVEXT_INSTANTIATE(2, double)
CONVEXT_INSTANTIATE(4, float)
CONVEXT_INSTANTIATE(4, double)
#undef CONVEXT_INSTANTIATE

}  // namespace convext
