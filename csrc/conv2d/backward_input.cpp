// Input gradient: the *full* correlation of the stride-dilated output gradient
// with the 180-degree-rotated filter, channels swapped (K <-> C per group):
//
//   dx[n,c,ih,iw] = sum_{k,r,s} w[k,c,r,s] * dyd[n,k, ih + ph - r*dh, iw + pw - s*dw]
//
// where dyd is dy with (stride - 1) zeros between neighbours. Correlating with
// those zeros would waste (1 - 1/(sh*sw)) of the work, so the rows of dx are
// split by phase ih = phi + sh*q: for one phase, only the taps r with
// (phi + ph - r*dh) divisible by sh meet a non-zero of dyd, at
// oh = q + (phi + ph - r*dh) / sh. Those taps, taken in reverse order (the
// rotation), form a smaller filter with dilation dh / gcd(sh, dh), and
// dx[..., phi::sh, psi::sw] is a plain stride-1 correlation of dy with it.
// With stride 1 there is one phase: the textbook full correlation of dy with
// rot180(w), padding dh*(R-1) - ph.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "conv2d/conv2d.hpp"
#include "conv2d/plan.hpp"
#include "conv2d/patches.hpp"
#include "core/parallel.hpp"
#include "core/scan.hpp"
#include "conv2d/rows_gemm.hpp"

namespace convext {
namespace {

// The taps of one axis that serve output phase `phi`, as a sub-filter.
struct PhaseTaps {
    index_t count = 0;  // taps in the sub-filter (0: this phase gets no gradient)
    index_t last = 0;   // original index of the sub-filter's first tap (rotated: the last tap)
    index_t step = 1;   // original-index distance between neighbouring taps
    index_t dilation = 1, pad = 0, out = 0;
};

PhaseTaps phase_taps(index_t phi, index_t stride, index_t dilation, index_t pad, index_t R,
                     index_t size) {
    PhaseTaps t;
    t.out = ceil_div(size - phi, stride);
    const index_t g = std::gcd(stride, dilation);
    t.step = stride / g;
    t.dilation = dilation / g;
    index_t first = -1;
    for (index_t r = 0; r < R && r < t.step; ++r)
        if ((phi + pad - r * dilation) % stride == 0) {
            first = r;
            break;
        }
    if (first < 0) return t;
    t.count = (R - 1 - first) / t.step + 1;
    t.last = first + (t.count - 1) * t.step;
    // dx_phase[q] = sum_j sub[j] * dy[q + j * t.dilation + offset(last)]
    t.pad = -((phi + pad - t.last * dilation) / stride);
    return t;
}

// The phases of dx that get a gradient, each with its taps per axis.
struct InputPhase {
    index_t phi, psi;
    PhaseTaps th, tw;
};

std::vector<InputPhase> input_phase_list(const Conv2dGeometry& g) {
    std::vector<InputPhase> phases;
    for (index_t phi = 0; phi < std::min(g.stride.h, g.H); ++phi)
        for (index_t psi = 0; psi < std::min(g.stride.w, g.W); ++psi) {
            const PhaseTaps th = phase_taps(phi, g.stride.h, g.dilation.h, g.padding.h, g.R, g.H);
            const PhaseTaps tw = phase_taps(psi, g.stride.w, g.dilation.w, g.padding.w, g.S, g.W);
            if (th.count == 0 || tw.count == 0) continue;  // rows the forward never read
            phases.push_back({phi, psi, th, tw});
        }
    return phases;
}

// A phase's stride-1 correlation of N images of dy with its sub-filter.
CorrelationPlan phase_plan(const Conv2dGeometry& g, const InputPhase& ph, index_t N) {
    CorrelationPlan p;
    p.N = N, p.C = g.K, p.H = g.Ho, p.W = g.Wo;
    p.K = g.C, p.R = ph.th.count, p.S = ph.tw.count, p.groups = g.groups;
    p.dilation = {ph.th.dilation, ph.tw.dilation};
    p.pad = {ph.th.pad, ph.tw.pad};
    p.Ho = ph.th.out, p.Wo = ph.tw.out;
    // Sums of 64 products: with the default 256 the input gradients of
    // ResNet's 64-channel 3x3 layers were 2.7-2.9x PyTorch's float32 error on
    // AVX2 (now 0.9-1.1x, at a few percent of the backward's time:
    // docs/performance.md, "Design measurements").
    p.kc = 64;
    return p;
}

// Writes the W values of a dx row from its column phases: src(b), b < sw,
// points at the values of columns b, b + sw, b + 2*sw, ... (all of them), or
// is null where that phase gets no gradient (zeros: at least W/2 + 1 zeros).
template <class T, class Src>
void assemble_row(const gemm::Kernel<T>& kern, index_t W, index_t sw, Src src, const T* zeros,
                  T* dst) {
    if (sw == 2) {  // vectorised
        const T* a = src(0);
        const T* b = W > 1 ? src(1) : nullptr;
        if (!a && !b) return std::fill(dst, dst + W, T(0));
        a = a ? a : zeros, b = b ? b : zeros;
        kern.vec.interleave2(W / 2, a, b, dst);
        if (W % 2) dst[W - 1] = a[W / 2];
        return;
    }
    for (index_t b = 0; b < std::min(sw, W); ++b) {
        const T* v = src(b);
        for (index_t t = 0, iw = b; iw < W; ++t, iw += sw) dst[iw] = v ? v[t] : T(0);
    }
}

// With a stride and few input channels (the stem: 3), the phases are small
// correlations one image at a time; instead, the transposed form of the
// forward pass: multiply dy by the filters over dy's positions,
//   z[(c, r, s)][oh*Wo + ow] = sum_k w[k, c, r, s] * dy[k][oh][ow]
// (M = Cg*R*S rows, depth Kg, B = dy's rows: one GEMM for every tap of every
// phase; RowsGemm), and add each z row, shifted, into the stride-phase plane
// of dx it lands in (ih = oh*sh + r*dh - ph = sh*(oh + q_r) + a_r: plane a_r,
// row oh + q_r; unit stride). dx is then read off the planes. One task per
// (image, group), in a fixed order.
// Its planes are (Ho + span) x (Wo + span) per phase: only where the taps'
// span is within the output's size (not taps 2**20 apart on a 4x4 input,
// where the planes would grow with the dilation instead of the work).
}  // namespace

bool shift_add_spans_fit(const Conv2dGeometry& g) {
    const PhaseAxis ah(g.R, g.stride.h, g.dilation.h, g.padding.h);
    const PhaseAxis aw(g.S, g.stride.w, g.dilation.w, g.padding.w);
    return ah.span <= g.Ho + g.R && aw.span <= g.Wo + g.S;
}

namespace {

// The phase correlations below pad dy with zeros ("full" correlation), so a
// NaN or Inf weight meets those zeros: 0 * Inf = NaN at input positions that
// tap never reaches (the direct sum, torch and the reference have no such
// term). The shift-add form only multiplies weights by real dy values: it
// takes a call whose weights are not all finite (a scan of w, cheap next to
// the gradient).
template <class T>
bool all_finite(const T* p, index_t n) {
    return max_abs(p, n) <= std::numeric_limits<T>::max();
}

template <class T>
void input_grad_shift_add(const Conv2dGeometry& g, const T* dy, const T* w, T* dx) {
    const char* op = "conv2d_input_grad";
    const index_t Kg = g.Kg(), Cg = g.Cg(), RS = g.R * g.S, M = Cg * RS;
    const index_t P = g.Ho * g.Wo;
    const PhaseAxis ah(g.R, g.stride.h, g.dilation.h, g.padding.h);
    const PhaseAxis aw(g.S, g.stride.w, g.dilation.w, g.padding.w);
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const index_t lw =
        std::max(checked_add(g.Wo, aw.span, op), ceil_div(g.W, g.stride.w) - aw.qmin);
    // slot of each row / column phase, -1 where no tap reads that phase
    std::vector<index_t> ah_slot(g.stride.h, -1), aw_slot(g.stride.w, -1);
    for (index_t i = 0; i < ah.nslots; ++i) ah_slot[ah.slot_phase[i]] = i;
    for (index_t j = 0; j < aw.nslots; ++j) aw_slot[aw.slot_phase[j]] = j;
    const std::vector<T> zeros(g.W / 2 + 1, T(0));
    const index_t plane = checked_mul(checked_add(g.Ho, ah.span, op), lw, op);
    const index_t nslots = ah.nslots * aw.nslots, planes_size = checked_mul(Cg * nslots, plane, op);
    const index_t band = std::clamp<index_t>(ceil_div(512, g.Wo), 1, g.Ho), ldz = band * g.Wo;
    const RowsGemm<T> gemm(g.groups, M, Kg, P, ldz, [&](index_t grp, index_t i, index_t k) {
        return w[((grp * Kg + k) * Cg + i / RS) * RS + i % RS];
    });
    const index_t tasks = g.N * g.groups;
    const index_t per_thread = checked_add(checked_add(planes_size, gemm.staging_size(), op),
                                           checked_mul(M, ldz, op), op);
    Buffer<T> scratch(checked_mul(threads_for(tasks), per_thread, op), "input-gradient phases");
    parallel_for(tasks, [&](index_t t, int tid) {
        const index_t n = t / g.groups, grp = t % g.groups;
        T* planes = scratch.data() + tid * per_thread;
        T* staging = planes + planes_size;
        T* z = staging + gemm.staging_size();
        std::fill(planes, planes + planes_size, T(0));
        const T* dyg = dy + (n * g.K + grp * Kg) * P;
        for (index_t oh0 = 0; oh0 < g.Ho; oh0 += band) {
            const index_t rows = std::min(band, g.Ho - oh0);
            // in place, unless the last band of the last image (reads past dy)
            const T* next = oh0 + 2 * band <= g.Ho ? dyg + (oh0 + band) * g.Wo : nullptr;
            gemm.run(grp, dyg + oh0 * g.Wo, rows * g.Wo, t < tasks - 1 || oh0 + rows < g.Ho,
                     staging, z, ldz, next);
            for (index_t i = 0; i < M; ++i) {
                const index_t c = i / RS, r = (i / g.S) % g.R, s = i % g.S;
                T* dst = planes + ((c * ah.nslots + ah.slot[r]) * aw.nslots + aw.slot[s]) * plane +
                         (oh0 + ah.shift[r]) * lw + aw.shift[s];
                for (index_t q = 0; q < rows; ++q)
                    kern.vec.add_to(g.Wo, z + i * ldz + q * g.Wo, dst + q * lw);
            }
        }
        // dx row ih = sh*(j + qmin) + a: row j of the planes of row phase a;
        // column iw = sw*(u + qmin) + b: entry u of the plane of column
        // phase b (lw covers every column; those no tap reads stay zero).
        for (index_t c = 0; c < Cg; ++c)
            for (index_t ih = 0; ih < g.H; ++ih) {
                T* dst = dx + ((n * g.C + grp * Cg + c) * g.H + ih) * g.W;
                const index_t i = ah_slot[ih % g.stride.h], j = ih / g.stride.h - ah.qmin;
                if (i < 0 || j >= g.Ho + ah.span) {  // rows no tap reads
                    std::fill(dst, dst + g.W, T(0));
                    continue;
                }
                const T* row = planes + (c * ah.nslots + i) * aw.nslots * plane + j * lw - aw.qmin;
                assemble_row(kern, g.W, g.stride.w, [&](index_t b) -> const T* {
                    const index_t jj = aw_slot[b];
                    return jj < 0 ? nullptr : row + jj * plane;
                }, zeros.data(), dst);
            }
    }, M * Kg * P);
}


// With a stride, the images of one chunk of the phase computation (equal
// chunks). Several phases: dy of at most ~2 MiB at a time, so that the
// phases after the first find it in cache; one phase (a 1x1 filter): up to
// ~8 MiB of phase values, fewer, larger parallel loops. Stride 1: all images.
index_t chunk_images(const Conv2dGeometry& g, std::size_t nphases, std::size_t elem) {
    if (g.stride.h == 1 && g.stride.w == 1) return g.N;
    const index_t cap = (index_t(nphases > 1 ? 2 : 8) << 20) / index_t(elem);
    const index_t per_image = std::max(g.K * g.Ho * g.Wo, g.C * g.H * g.W);
    const index_t max_images = std::clamp<index_t>(cap / per_image, 1, g.N);
    return ceil_div(g.N, ceil_div(g.N, max_images));
}

}  // namespace

std::vector<CorrAlgo> Conv2dPlan::input_cores() const {
    std::vector<CorrAlgo> cores;
    if (input_grad != InputGradAlgo::phases) return cores;
    const std::vector<InputPhase> phases = input_phase_list(g);
    const index_t images = chunk_images(g, phases.size(), elem_size);
    for (const InputPhase& ph : phases) {
        const CorrelationPlan p = phase_plan(g, ph, images);
        cores.push_back(input_core ? *input_core : select_correlation(p));
    }
    return cores;
}

bool Conv2dPlan::input_core_runs(CorrAlgo core) const {
    for (const InputPhase& ph : input_phase_list(g))
        if (!can_run(core, phase_plan(g, ph, g.N))) return false;
    return true;
}

template <class T>
void conv2d_backward_input(const Conv2dPlan& cp, const T* dy, const T* w, T* dx) {
    const Conv2dGeometry& g = cp.g;
    const index_t Kg = g.Kg(), Cg = g.Cg(), RS = g.R * g.S;
    const index_t sh = g.stride.h, sw = g.stride.w, HW = g.H * g.W;
    const char* op = "conv2d_input_grad";
    if (cp.input_grad == InputGradAlgo::strided_shift_add ||
        (!all_finite(w, g.K * Cg * RS) && shift_add_spans_fit(g)))
        return input_grad_shift_add(g, dy, w, dx);

    // The phases that get a gradient, each with its sub-filter, rotated and
    // channels swapped: (K, Cg, R, S) -> (C, Kg, nh, nw).
    struct Phase {
        InputPhase taps;
        Buffer<T> sub;
    };
    std::vector<Phase> phases;
    for (const InputPhase& ip : input_phase_list(g)) {
        const PhaseTaps &th = ip.th, &tw = ip.tw;
        const index_t nh = th.count, nw = tw.count;
        Buffer<T> sub(checked_mul(g.K, Cg * nh * nw, op), "rotated sub-filters");
        parallel_for(g.K, [&](index_t k, int) {
            const index_t grp = k / Kg, kk = k % Kg;
            for (index_t c = 0; c < Cg; ++c) {
                const T* src = w + (k * Cg + c) * RS;
                T* dst = sub.data() + ((grp * Cg + c) * Kg + kk) * nh * nw;
                for (index_t j = 0; j < nh; ++j)
                    for (index_t i = 0; i < nw; ++i)
                        dst[j * nw + i] =
                            src[(th.last - j * th.step) * g.S + (tw.last - i * tw.step)];
            }
        }, Cg * nh * nw);
        phases.push_back({ip, std::move(sub)});
    }
    // Each phase's correlation of N images (its core: the forced one, or the
    // selector's for that many images), into out.
    auto correlate_phase = [&](const Phase& ph, index_t N, const T* dyn, T* out) {
        const CorrelationPlan p = phase_plan(g, ph.taps, N);
        correlate_nchw(p, cp.input_core ? *cp.input_core : select_correlation(p), dyn,
                       ph.sub.data(), static_cast<const T*>(nullptr), out);
    };
    if (sh == 1 && sw == 1) {
        if (!phases.empty()) correlate_phase(phases[0], g.N, dy, dx);
        return;
    }

    // With a stride, the phases are computed a few images at a time into
    // buffers (chunk_images), then dx is written once, row by row: zeros, and
    // each phase's values at their stride.
    const index_t dy_image = checked_mul(g.K, g.Ho * g.Wo, op);
    const index_t images = chunk_images(g, phases.size(), sizeof(T));
    std::vector<index_t> offset(phases.size() + 1, 0);  // of each phase's buffer
    for (std::size_t f = 0; f < phases.size(); ++f) {
        const index_t size = checked_mul(images * g.C, phases[f].taps.th.out * phases[f].taps.tw.out, op);
        offset[f + 1] = checked_add(offset[f], size, op);
    }
    Buffer<T> phase_out(offset.back(), "input-gradient phases");
    const index_t nsw = std::min(sw, g.W);  // phase_at[phi * nsw + psi]: its phase, or -1
    std::vector<index_t> phase_at(std::min(sh, g.H) * nsw, -1);
    for (std::size_t f = 0; f < phases.size(); ++f)
        phase_at[phases[f].taps.phi * nsw + phases[f].taps.psi] = index_t(f);
    const std::vector<T> zeros(g.W / 2 + 1, T(0));
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    for (index_t n0 = 0; n0 < g.N; n0 += images) {
        const index_t nb = std::min(images, g.N - n0);
        for (std::size_t f = 0; f < phases.size(); ++f)
            correlate_phase(phases[f], nb, dy + n0 * dy_image, phase_out.data() + offset[f]);
        parallel_for(nb * g.C, [&](index_t i, int) {  // i: (image, channel) in the chunk
            for (index_t ih = 0; ih < g.H; ++ih)
                assemble_row(kern, g.W, sw, [&](index_t psi) -> const T* {
                    const index_t f = phase_at[(ih % sh) * nsw + psi];
                    if (f < 0) return nullptr;
                    const InputPhase& ph = phases[f].taps;
                    return phase_out.data() + offset[f] + (i * ph.th.out + ih / sh) * ph.tw.out;
                }, zeros.data(), dx + (n0 * g.C + i) * HW + ih * g.W);
        }, HW);
    }
}

template void conv2d_backward_input<float>(const Conv2dPlan&, const float*, const float*, float*);
template void conv2d_backward_input<double>(const Conv2dPlan&, const double*, const double*,
                                            double*);

}  // namespace convext
