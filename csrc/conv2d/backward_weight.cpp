// Weight and bias gradients.
//
//   dw[k,c,r,s] = sum_{n,oh,ow} dy[n,k,oh,ow] * x[n,c, oh*sh + r*dh - ph, ow*sw + s*dw - pw]
//
// i.e. the correlation of x with the (stride-dilated) dy. As a GEMM per group:
// dw (Kg x Cg*R*S) = sum_n dy[n] (Kg x P) * patches(x[n])^T (P x Cg*R*S), the
// patches gathered on the fly by the forward pass's gather.
//
// Determinism: every element of dw is owned by one task, which sums in a fixed
// order. When dw has too few column blocks to keep the threads busy, the batch
// is cut into a number of chunks that depends on the shapes only (never on the
// thread count), each chunk writes its own partial, and the partials are added
// in chunk order. No atomics, same bits for any thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "conv2d/conv2d.hpp"
#include "conv2d/plan.hpp"
#include "kernels/kernel.hpp"
#include "conv2d/patches.hpp"
#include "core/parallel.hpp"
#include "conv2d/winograd.hpp"

namespace convext {
namespace {

constexpr index_t kTargetTasks = 16;

// Few output channels per group (depthwise): one task per output channel.
// Per image, the dy plane and each input plane of the group are copied into
// zero-padded rows (x: tap s at s*tap, unit stride, as in the forward direct
// loop); then the ISA's dot_taps adds, over all output rows, the dot products
// of each dy row with the R input rows it met (a zero row for the padding),
// one lane-wise partial sum per tap (r, s), all taps per pass over dy.
// Products with the zero padding add nothing, unless dy
// holds an Inf or NaN (IEEE, PyTorch and the GEMM path then make them NaN):
// planes of dy with one take the exact loop over every position instead.
template <class T>
void weight_grad_direct(const Conv2dGeometry& g, const T* dy, const T* x, T* dw) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const index_t L = kern.lanes;
    const index_t Kg = g.Kg(), Cg = g.Cg(), sw = g.stride.w, dwl = g.dilation.w, P = g.Ho * g.Wo;
    const index_t RS = g.R * g.S, wq = round_up(g.Wo, L);
    const PaddedTapRows cols(g.Wo, g.S, sw, dwl, g.padding.w, wq);
    const index_t plen = cols.len;
    // Per thread: dy plane (Ho x wq), x planes (Cg x H x plen), lane sums
    // (Cg*R*S x L), a zero row (the padding rows); and the row pointers:
    // dy's, and for each output row the R input rows it meets.
    const index_t per_thread = g.Ho * wq + Cg * g.H * plen + Cg * RS * L + plen;
    const int nt = threads_for(g.K);
    Buffer<T> scratch(checked_mul(nt, per_thread, "conv2d_weight_grad"), "tap rows");
    const index_t nptr = checked_mul(g.Ho, g.R + 1, "conv2d_weight_grad");
    Buffer<const T*> pointers(checked_mul(nt, nptr, "conv2d_weight_grad"), "row pointers");

    parallel_for(g.K, [&](index_t k, int tid) {
        const index_t grp = k / Kg;
        T* dyp = scratch.data() + tid * per_thread;
        T* xp = dyp + g.Ho * wq;
        T* acc = xp + Cg * g.H * plen;
        T* zeros = acc + Cg * RS * L;
        std::fill(zeros, zeros + plen, T(0));
        const T** dy_rows = pointers.data() + tid * nptr;
        const T** x_rows = dy_rows + g.Ho;
        for (index_t oh = 0; oh < g.Ho; ++oh) dy_rows[oh] = dyp + oh * wq;
        // dy is checked for Inf / NaN while it is copied (below); if it holds
        // any, the lane sums are dropped and this loop runs instead.
        auto exact = [&] {  // every product, padding included, in a fixed order
            for (index_t c = 0; c < Cg; ++c)
                for (index_t r = 0; r < g.R; ++r)
                    for (index_t s = 0; s < g.S; ++s) {
                        T sum = T(0);
                        for (index_t n = 0; n < g.N; ++n) {
                            const T* dyk = dy + (n * g.K + k) * P;
                            const T* xc = x + (n * g.C + grp * Cg + c) * g.H * g.W;
                            for (index_t oh = 0; oh < g.Ho; ++oh) {
                                const index_t ih = oh * g.stride.h + r * g.dilation.h - g.padding.h;
                                for (index_t ow = 0; ow < g.Wo; ++ow) {
                                    const index_t iw = ow * sw + s * dwl - g.padding.w;
                                    const bool in = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
                                    sum += dyk[oh * g.Wo + ow] * (in ? xc[ih * g.W + iw] : T(0));
                                }
                            }
                        }
                        dw[((k * Cg + c) * g.R + r) * g.S + s] = sum;
                    }
        };
        std::fill(acc, acc + Cg * RS * L, T(0));
        for (index_t n = 0; n < g.N; ++n) {
            const T* dyk = dy + (n * g.K + k) * P;
            const T* xg = x + (n * g.C + grp * Cg) * g.H * g.W;
            int nonfinite = 0;  // v - v is NaN exactly for Inf and NaN
            for (index_t oh = 0; oh < g.Ho; ++oh) {
                const T* src = dyk + oh * g.Wo;
                T* dst = dyp + oh * wq;
                if (n + 1 < g.N) {  // the next image's planes (dw3x3_56: -28% time)
                    prefetch_slice(dyk + g.K * P, P, oh, g.Ho);
                    prefetch_slice(xg + g.C * g.H * g.W, Cg * g.H * g.W, oh, g.Ho);
                }
                for (index_t q = 0; q < g.Wo; ++q) {
                    const T v = src[q], z = v - v;
                    dst[q] = v;
                    nonfinite |= z != z;
                }
                std::fill(dst + g.Wo, dst + wq, T(0));
            }
            if (nonfinite) return exact();
            for (index_t c = 0; c < Cg; ++c) {
                const T* xc = xg + c * g.H * g.W;
                T* xpc = xp + c * g.H * plen;
                for (index_t ih = 0; ih < g.H; ++ih) cols.fill(xc + ih * g.W, g.W, xpc + ih * plen);
                for (index_t oh = 0; oh < g.Ho; ++oh)
                    for (index_t r = 0; r < g.R; ++r) {
                        const index_t ih = oh * g.stride.h + r * g.dilation.h - g.padding.h;
                        x_rows[oh * g.R + r] = ih < 0 || ih >= g.H ? zeros : xpc + ih * plen;
                    }
                kern.dot.taps(g.Ho, wq, g.R, g.S, dy_rows, x_rows, cols.tap, acc + c * RS * L);
            }
        }
        kern.vec.lane_sums(Cg * RS, acc, dw + k * Cg * RS);
    }, Cg * g.R * g.S * g.N * P);
}

// The depthwise weight gradient on small planes (7x7-28x28 in MobileNets,
// where weight_grad_direct's per-row copies cost more than its products):
// per image, the tap planes of the whole output (PhasePlanes with one band
// and a column slot per tap, so tap (c, r, s) reads exactly its Ho*Wo input
// values as one contiguous run, padding as zeros), and dot_taps over the
// flattened plane as one row: dy is read in place. The last n % lanes
// products of each tap go to lane 0. One task per output channel, images in
// order. Every product of the definition is made (padding included), so
// Inf / NaN in dy or x land as in the exact loop.
template <class T>
void weight_grad_planes(const Conv2dGeometry& g, const T* dy, const T* x, T* dw) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const index_t L = kern.lanes, Kg = g.Kg(), Cg = g.Cg(), R = g.R, S = g.S, RS = R * S;
    const index_t P = g.Ho * g.Wo, full = P - P % L;
    const CorrelationPlan fp = forward_plan(g);
    const PhasePlanes pp(fp, g.Ho, /*tap_columns=*/true);  // lw == Wo
    const index_t per_thread = checked_add(pp.size, Cg * RS * L, "conv2d_weight_grad");
    const int nt = threads_for(g.K);
    Buffer<T> scratch(checked_mul(nt, per_thread, "conv2d_weight_grad"), "tap planes");
    std::vector<index_t> off(Cg * RS);
    for (index_t t = 0; t < Cg * RS; ++t) off[t] = pp.offset(t);
    Buffer<const T*> pointers(checked_mul(nt, R, "conv2d_weight_grad"), "row pointers");
    std::vector<char> zeroed(nt, 0);  // every fill writes the same positions
    parallel_for(g.K, [&](index_t k, int tid) {
        const index_t grp = k / Kg;
        T* planes = scratch.data() + tid * per_thread;
        const T** rows = pointers.data() + tid * R;  // filter row r's tap (c, r, 0); tap s: s planes on
        T* acc = planes + pp.size;
        std::fill(acc, acc + Cg * RS * L, T(0));
        for (index_t n = 0; n < g.N; ++n) {
            pp.fill(fp, x + (n * g.C + grp * Cg) * g.H * g.W, 0, g.Ho, planes, !zeroed[tid]);
            zeroed[tid] = 1;
            const T* dyk = dy + (n * g.K + k) * P;
            for (index_t c = 0; c < Cg; ++c) {
                for (index_t r = 0; r < R; ++r) rows[r] = planes + off[(c * R + r) * S];
                if (full > 0) kern.dot.taps(1, full, R, S, &dyk, rows, pp.plane, acc + c * RS * L);
            }
            for (index_t t = 0; t < Cg * RS; ++t)
                for (index_t q = full; q < P; ++q) acc[t * L] += dyk[q] * planes[off[t] + q];
        }
        kern.vec.lane_sums(Cg * RS, acc, dw + k * Cg * RS);
    }, Cg * RS * g.N * P);
}

// The fixed partition of the batch that a weight gradient reduces over:
// `count` chunks, each a run of images or, when there are fewer images than
// chunks wanted (so that many threads still find work), one image's share
// of its `units` (bands of output rows, or rows). Each chunk's partial sums
// are added in chunk order: the same sums for any thread count.
struct BatchChunks {
    index_t N, units, splits, count;
    BatchChunks(index_t N_, index_t units_, index_t wanted)
        : N(N_), units(units_),
          splits(N_ >= wanted ? 1 : std::min(units_, ceil_div(wanted, N_))),
          count(splits > 1 ? N_ * splits : std::min(N_, wanted)) {}
    // Chunk c: images [n0, n1), and of each image units [u0, u1).
    void get(index_t c, index_t& n0, index_t& n1, index_t& u0, index_t& u1) const {
        if (splits == 1) {
            n0 = c * N / count, n1 = (c + 1) * N / count, u0 = 0, u1 = units;
        } else {
            const index_t part = c % splits;
            n0 = c / splits, n1 = n0 + 1;
            u0 = part * units / splits, u1 = (part + 1) * units / splits;
        }
    }
};

// Adds the per-chunk partial sums in chunk order: out[i] = sum over c <
// chunks of partial[c * stride + i], i < size.
template <class T>
void sum_partials(index_t chunks, index_t size, index_t stride, const T* partial, T* out) {
    constexpr index_t kBlock = 4096;
    parallel_for(ceil_div(size, kBlock), [&](index_t b, int) {
        const index_t i0 = b * kBlock, i1 = std::min(size, i0 + kBlock);
        std::copy(partial + i0, partial + i1, out + i0);
        for (index_t c = 1; c < chunks; ++c) {
            const T* part = partial + c * stride;
            for (index_t i = i0; i < i1; ++i) out[i] += part[i];
        }
    }, kBlock * chunks);
}

// Dot products read in place: dw[k, crs] is the dot product, over output
// positions, of dy[k] with row crs of the column matrix. With a column plane
// per tap (PhasePlanes with tap_columns) a band's values of row crs are one
// unit-stride run, as dy's are: per (chunk of the batch, group), per image
// and band of output rows, fill x's planes and let dot_tile add each
// dot_k x dot_j tile of (k, crs) lane-wise. No copies of dy, no transposes,
// no packed panels; the lane sums are added at the end. With db, a row of
// ones after the KD rows of the column matrix makes its dot products the
// bias gradient, in the same pass over dy.
template <class T>
void weight_grad_dot(const Conv2dGeometry& g, const T* dy, const T* x, T* dw, T* db) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const char* op = "conv2d_weight_grad";
    const CorrelationPlan plan = forward_plan(g);
    const index_t L = kern.lanes, Kg = g.Kg(), Cg = g.Cg(), KD = Cg * g.R * g.S, P = g.Ho * g.Wo;
    const index_t J = KD + (db ? 1 : 0);  // columns: the KD taps, then the ones
    const PhasePlanes pp(plan, ceil_div(1024, g.Wo), true);
    const index_t KB = kern.dot.k, JB = kern.dot.j;
    const index_t kt = ceil_div(Kg, KB), jt = ceil_div(J, JB), tile = KB * JB * L;
    const BatchChunks bc(g.N, ceil_div(g.Ho, pp.band), ceil_div(kTargetTasks, g.groups));
    const index_t chunks = bc.count;
    const index_t dw_size = g.K * KD, chunk_size = checked_add(dw_size, db ? g.K : 0, op);
    const index_t acc_size = checked_mul(kt * jt, tile, op);
    const index_t ones_size = db ? pp.band * g.Wo : 0;
    const index_t per_thread = checked_add(checked_add(pp.size, ones_size, op), acc_size, op);
    const index_t tasks = chunks * g.groups;
    Buffer<T> scratch(checked_mul(threads_for(tasks), per_thread, op), "input planes");
    Buffer<T> partial(chunks > 1 ? checked_mul(chunks, chunk_size, op) : 0,
                      "weight-gradient partial sums");
    Buffer<index_t> off(J, "tap offsets");  // from the planes
    for (index_t k = 0; k < KD; ++k) off[k] = pp.offset(k);
    if (db) off[KD] = pp.size;

    parallel_for(tasks, [&](index_t t, int tid) {
        const index_t chunk = t / g.groups, grp = t % g.groups;
        index_t n0, n1, b0, b1;  // images, bands
        bc.get(chunk, n0, n1, b0, b1);
        T* planes = scratch.data() + tid * per_thread;
        T* acc = planes + pp.size + ones_size;
        std::fill(planes + pp.size, acc, T(1));
        std::fill(acc, acc + acc_size, T(0));
        for (index_t n = n0; n < n1; ++n)
            for (index_t oh0 = b0 * pp.band; oh0 < std::min(g.Ho, b1 * pp.band); oh0 += pp.band) {
                const index_t rows = std::min(pp.band, g.Ho - oh0);
                pp.fill(plan, x + (n * g.C + grp * Cg) * g.H * g.W, oh0, rows, planes);
                const T* dyb = dy + (n * g.K + grp * Kg) * P + oh0 * g.Wo;
                // Edge tiles repeat the last k / column; their sums are dropped.
                for (index_t a = 0; a < kt; ++a) {
                    const T* d[gemm::kMaxDot];
                    for (index_t i = 0; i < KB; ++i) d[i] = dyb + std::min(a * KB + i, Kg - 1) * P;
                    for (index_t b = 0; b < jt; ++b) {
                        const T* xs[gemm::kMaxDot];
                        for (index_t j = 0; j < JB; ++j)
                            xs[j] = planes + off[std::min(b * JB + j, J - 1)];
                        kern.dot.tile(rows * g.Wo, d, xs, acc + (a * jt + b) * tile);
                    }
                }
            }
        kern.vec.lane_sums(acc_size / L, acc, acc);
        T* out = chunks > 1 ? partial.data() + chunk * chunk_size : nullptr;
        T* out_w = (out ? out : dw) + grp * Kg * KD;
        T* out_b = out ? out + dw_size + grp * Kg : db ? db + grp * Kg : nullptr;
        for (index_t k = 0; k < Kg; ++k)
            for (index_t j = 0; j < J; ++j) {
                const T v = acc[((k / KB) * jt + j / JB) * KB * JB + (k % KB) * JB + j % JB];
                (j < KD ? out_w[k * KD + j] : out_b[k]) = v;
            }
    }, Kg * J * ceil_div(g.N * P, chunks));

    if (chunks > 1) {
        sum_partials(chunks, dw_size, chunk_size, partial.data(), dw);
        if (db) sum_partials(chunks, g.K, chunk_size, partial.data() + dw_size, db);
    }
}

template <class T>
void weight_grad_gemm(const Conv2dGeometry& g, const T* dy, const T* x, T* dw) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const int mr = kern.gemm.mr, nr = kern.gemm.nr;
    const CorrelationPlan plan = forward_plan(g);
    const index_t Kg = g.Kg(), Cg = g.Cg(), KD = Cg * g.R * g.S, P = g.Ho * g.Wo;
    const index_t KC = gemm::kKC<T>;
    const index_t ncw = round_up(ceil_div(KD, ceil_div(KD, 4 * gemm::kNC<T>)), nr);
    const index_t ncb = ceil_div(KD, ncw);
    const index_t out_tasks = g.groups * ncb;
    const BatchChunks bc(g.N, g.Ho, ceil_div(kTargetTasks, out_tasks));  // units: output rows
    const index_t chunks = bc.count;
    const index_t dw_size = g.K * KD;

    Buffer<T> partial(chunks > 1 ? checked_mul(chunks, dw_size, "conv2d_weight_grad") : 0,
                      "weight-gradient partial sums");
    const index_t per_thread =
        gemm::packed_a_size(Kg, KC, mr) + gemm::packed_b_size(ncw, KC, nr) + nr * KC;
    const index_t tasks = out_tasks * chunks;
    Buffer<T> scratch(checked_mul(threads_for(tasks), per_thread, "conv2d_weight_grad"),
                      "gradient panels");

    parallel_for(tasks, [&](index_t t, int tid) {
        const index_t chunk = t / out_tasks, grp = (t % out_tasks) / ncb, j0 = (t % ncb) * ncw;
        const index_t nj = std::min(ncw, KD - j0);
        index_t n0, n1, r0, r1;  // images, output rows
        bc.get(chunk, n0, n1, r0, r1);
        // depth blocks of at most KC positions, equal (no short last block)
        const index_t p_begin = r0 * g.Wo, p_end = r1 * g.Wo;
        const index_t kcb = ceil_div(p_end - p_begin, ceil_div(p_end - p_begin, KC));
        T* apack = scratch.data() + tid * per_thread;
        T* bpack = apack + gemm::packed_a_size(Kg, KC, mr);
        T* col = bpack + gemm::packed_b_size(ncw, KC, nr);
        T* out = (chunks > 1 ? partial.data() + chunk * dw_size : dw) + grp * Kg * KD + j0;
        bool accumulate = false;
        for (index_t n = n0; n < n1; ++n) {
            const T* dyg = dy + (n * g.K + grp * Kg) * P;
            const T* xg = x + (n * g.C + grp * Cg) * g.H * g.W;
            for (index_t p0 = p_begin; p0 < p_end; p0 += kcb) {
                const index_t kc = std::min(kcb, p_end - p0);
                kern.gemm.pack_a(Kg, kc, dyg + p0, P, 1, apack);
                // Patch rows (one per weight column) -> transposed into panels.
                for (index_t jp = 0; jp < nj; jp += nr) {
                    const index_t w = std::min<index_t>(nr, nj - jp);
                    for (index_t j = 0; j < w; ++j)
                        gather_patch_row(plan, xg, j0 + jp + j, p0, kc, col + j * kc);
                    kern.gemm.pack_b_cols(kc, w, col, kc, bpack + jp * kc);
                }
                for (index_t m0 = 0; m0 < Kg; m0 += gemm::kMC) {
                    const index_t mc = std::min(gemm::kMC, Kg - m0);
                    kern.gemm.macro(mc, nj, kc, apack + m0 * kc, bpack, out + m0 * KD, KD, accumulate);
                }
                accumulate = true;
            }
        }
    }, Kg * ncw * ceil_div(g.N * P, chunks));

    if (chunks > 1) sum_partials(chunks, dw_size, dw_size, partial.data(), dw);
}

}  // namespace

template <class T>
void conv2d_backward_weight(const Conv2dPlan& plan, const T* dy, const T* x, T* dw, T* db) {
    const Conv2dGeometry& g = plan.g;
    WeightGradAlgo algo = plan.weight_grad;
    if (is_winograd(algo) &&
        !winograd_safe(x, g.N * g.C * g.H * g.W, dy, g.N * g.K * g.Ho * g.Wo, g.N * g.Ho * g.Wo))
        algo = WeightGradAlgo::gemm;  // non-finite or huge operands (winograd_safe)
    switch (algo) {
        case WeightGradAlgo::depthwise: weight_grad_direct(g, dy, x, dw); break;
        case WeightGradAlgo::depthwise_planes: weight_grad_planes(g, dy, x, dw); break;
        case WeightGradAlgo::winograd_2x2: return weight_grad_winograd<2>(g, dy, x, dw, db);  // + bias
        case WeightGradAlgo::winograd_4x4: return weight_grad_winograd<4>(g, dy, x, dw, db);
        case WeightGradAlgo::dot: return weight_grad_dot(g, dy, x, dw, db);          // + bias
        case WeightGradAlgo::gemm: weight_grad_gemm(g, dy, x, dw); break;
    }
    if (db) conv2d_backward_bias(g, dy, db);
}

template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* dy, T* db) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const index_t P = g.Ho * g.Wo;
    parallel_for(g.K, [&](index_t k, int) {
        T lanes[64] = {};  // lane sums over the batch, in image order
        for (index_t n = 0; n < g.N; ++n) kern.vec.lane_add(P, dy + (n * g.K + k) * P, lanes);
        kern.vec.lane_sums(1, lanes, db + k);
    }, g.N * P);
}

#define CONVEXT_INSTANTIATE(T)                                                                \
    template void conv2d_backward_weight<T>(const Conv2dPlan&, const T*, const T*, T*, T*);     \
    template void conv2d_backward_bias<T>(const Conv2dGeometry&, const T*, T*);
CONVEXT_INSTANTIATE(float)
CONVEXT_INSTANTIATE(double)

}  // namespace convext
