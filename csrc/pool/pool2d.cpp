// Pooling. Work is split over (n, c) planes; each plane is owned by one task,
// so the backward scatter (overlapping windows add up) needs no atomics and
// is the same for any thread count.
#include "pool/pool2d.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/kernel.hpp"
#include "core/rows.hpp"
#include "core/parallel.hpp"

namespace convext {
namespace {

// Window of output (oh, ow) clipped to the input, in input coordinates.
struct Window {
    index_t h0, h1, w0, w1;  // [h0, h1) x [w0, w1), stepping by dilation
};

inline index_t first_tap(index_t start, index_t dil) {
    // First tap start + t*dil that is >= 0.
    return start >= 0 ? start : start + ceil_div(-start, dil) * dil;
}

// Adaptive window of output o of `out` over `in` positions: [floor(o*in/out), ceil((o+1)*in/out)).
inline index_t adaptive_start(index_t o, index_t out, index_t in) { return o * in / out; }
inline index_t adaptive_end(index_t o, index_t out, index_t in) { return ceil_div((o + 1) * in, out); }

inline Window max_window(const Pool2dGeometry& g, index_t oh, index_t ow) {
    if (g.adaptive)
        return {adaptive_start(oh, g.Ho, g.H), adaptive_end(oh, g.Ho, g.H),
                adaptive_start(ow, g.Wo, g.W), adaptive_end(ow, g.Wo, g.W)};
    const index_t hs = oh * g.stride.h - g.padding.h, ws = ow * g.stride.w - g.padding.w;
    const index_t he = std::min(hs + (g.kernel.h - 1) * g.dilation.h + 1, g.H);
    const index_t we = std::min(ws + (g.kernel.w - 1) * g.dilation.w + 1, g.W);
    return {first_tap(hs, g.dilation.h), he, first_tap(ws, g.dilation.w), we};
}

// PyTorch's NCHW CPU rule: scan rows then columns, take a value when it is
// greater than the running max or NaN. So the first of equal maxima wins, a
// NaN wins over numbers, and the last NaN wins over earlier NaNs.
template <class T>
inline index_t argmax_in(const Pool2dGeometry& g, const T* plane, const Window& win, T* best) {
    T m = -INFINITY;
    index_t arg = win.h0 * g.W + win.w0;
    for (index_t ih = win.h0; ih < win.h1; ih += g.dilation.h)
        for (index_t iw = win.w0; iw < win.w1; iw += g.dilation.w) {
            const T v = plane[ih * g.W + iw];
            if (v > m || std::isnan(v)) {
                m = v;
                arg = ih * g.W + iw;
            }
        }
    *best = m;
    return arg;
}

// Average-pool window and divisor, PyTorch's formula: the window is first
// clipped to the padded input (that size is the divisor with
// count_include_pad), then to the input; divisor_override (if not 0)
// replaces the divisor.
struct AvgWindow {
    index_t h0, h1, w0, w1;
    index_t divisor;
};

inline AvgWindow avg_window(const Pool2dGeometry& g, const AvgPoolOptions& opt, index_t oh,
                            index_t ow) {
    if (g.adaptive) {
        const Window win = max_window(g, oh, ow);
        return {win.h0, win.h1, win.w0, win.w1, 0};
    }
    index_t hs = oh * g.stride.h - g.padding.h, ws = ow * g.stride.w - g.padding.w;
    index_t he = std::min(hs + g.kernel.h, g.H + g.padding.h);
    index_t we = std::min(ws + g.kernel.w, g.W + g.padding.w);
    const index_t padded_size = (he - hs) * (we - ws);
    hs = std::max<index_t>(hs, 0), ws = std::max<index_t>(ws, 0);
    he = std::min(he, g.H), we = std::min(we, g.W);
    const index_t inner = (he - hs) * (we - ws);
    const index_t divisor =
        opt.divisor_override != 0 ? opt.divisor_override : opt.count_include_pad ? padded_size : inner;
    return {hs, he, ws, we, divisor};
}

// v / the window's divisor. Adaptive windows divide by their height, then by
// their width, as PyTorch's adaptive kernels do (the same rounding).
template <class T>
inline T average(const Pool2dGeometry& g, const AvgWindow& win, T v) {
    if (g.adaptive) return v / T(win.h1 - win.h0) / T(win.w1 - win.w0);
    return v / T(win.divisor);
}

inline index_t work_per_plane(const Pool2dGeometry& g) {
    return g.H * g.W + g.Ho * g.Wo * g.kernel.h * g.kernel.w;
}

// Max pooling of one plane at a time, with per-thread scratch. Per output
// row, each window tap's values are first laid out as a contiguous row
// (sampled at the stride, -inf in the padding), then the ISA's max_pool_row
// keeps the running max and the winning tap branch-free; the tap becomes
// PyTorch's flat index. Windows with very many taps use the scalar scan
// instead (their scratch would not be small). Shared by the forward pass and
// by the backward pass when it has to recompute the argmax.
template <class T>
class MaxPoolPlanes {
public:
    using TapIndex = typename gemm::Kernel<T>::TapIndex;

    MaxPoolPlanes(const Pool2dGeometry& g, int threads, bool keep_results)
        : g_(g), kern_(gemm::kernel<T>()), ntaps_(g.kernel.h * g.kernel.w),
          wq_(round_up(g.Wo, kern_.gemm.nr)),
          rows_(!g.adaptive && ntaps_ <= 256 && ntaps_ * wq_ <= (index_t(1) << 20)),
          samples_(rows_ ? checked_mul(threads, ntaps_ * wq_, "max_pool2d") : 0, "pool tap rows"),
          ptrs_(rows_ ? threads * ntaps_ : 0, "pool tap pointers"),
          taps_(rows_ ? threads * wq_ : 0, "pool taps"),
          y_(keep_results ? checked_mul(threads, g.Ho * g.Wo, "max_pool2d") : 0, "pool results"),
          idx_(keep_results ? checked_mul(threads, g.Ho * g.Wo, "max_pool2d") : 0, "pool argmax") {}

    // Results of one plane into thread tid's buffers (keep_results).
    T* y(int tid) const { return y_.data() + tid * g_.Ho * g_.Wo; }
    std::int64_t* idx(int tid) const { return idx_.data() + tid * g_.Ho * g_.Wo; }

    // yp[o] = max of window o of plane xp; ip[o] = its argmax (ip may be null).
    void run(const T* xp, T* yp, std::int64_t* ip, int tid) const {
        const Pool2dGeometry& g = g_;
        if (!rows_) {
            for (index_t oh = 0; oh < g.Ho; ++oh)
                for (index_t ow = 0; ow < g.Wo; ++ow) {
                    T best;
                    const index_t arg = argmax_in(g, xp, max_window(g, oh, ow), &best);
                    yp[oh * g.Wo + ow] = best;
                    if (ip) ip[oh * g.Wo + ow] = arg;
                }
            return;
        }
        const index_t sw = g.stride.w, dw = g.dilation.w;
        T* samp = samples_.data() + tid * ntaps_ * wq_;
        const T** ptr = ptrs_.data() + tid * ntaps_;
        TapIndex* tap = taps_.data() + tid * wq_;
        for (index_t oh = 0; oh < g.Ho; ++oh) {
            for (index_t r = 0; r < g.kernel.h; ++r) {
                const index_t ih = oh * g.stride.h + r * g.dilation.h - g.padding.h;
                for (index_t s = 0; s < g.kernel.w; ++s) {
                    T* dst = samp + (r * g.kernel.w + s) * wq_;
                    ptr[r * g.kernel.w + s] = dst;
                    if (ih < 0 || ih >= g.H)
                        std::fill(dst, dst + g.Wo, -T(INFINITY));
                    else
                        sample_row(xp + ih * g.W, g.W, g.Wo, sw, s * dw - g.padding.w, -T(INFINITY), dst);
                    std::fill(dst + g.Wo, dst + wq_, -T(INFINITY));
                }
            }
            kern_.pool.max_row(g.Wo, ntaps_, ptr, yp + oh * g.Wo, tap);
            if (!ip) continue;
            for (index_t ow = 0; ow < g.Wo; ++ow) {
                const index_t t = tap[ow];
                if (t < 0) {  // nothing taken: PyTorch reports the window's first position
                    const Window win = max_window(g, oh, ow);
                    ip[oh * g.Wo + ow] = win.h0 * g.W + win.w0;
                    continue;
                }
                const index_t r = t / g.kernel.w, s = t % g.kernel.w;
                ip[oh * g.Wo + ow] = (oh * g.stride.h + r * g.dilation.h - g.padding.h) * g.W +
                                     ow * sw + s * dw - g.padding.w;
            }
        }
    }

private:
    const Pool2dGeometry& g_;
    const gemm::Kernel<T>& kern_;
    index_t ntaps_, wq_;
    bool rows_;
    Buffer<T> samples_;
    Buffer<const T*> ptrs_;
    Buffer<TapIndex> taps_;
    Buffer<T> y_;
    Buffer<std::int64_t> idx_;
};

// dx of one plane: dy routed to the argmax positions (overlaps add up).
template <class T>
void route_to_argmax(const Pool2dGeometry& g, const T* dyp, const std::int64_t* ip, T* dxp) {
    const index_t HW = g.H * g.W, HoWo = g.Ho * g.Wo;
    std::fill(dxp, dxp + HW, T(0));
    for (index_t o = 0; o < HoWo; ++o) {
        if (ip[o] >= 0 && ip[o] < HW) {
            dxp[ip[o]] += dyp[o];
            continue;
        }
        // The forward reports a position outside the plane (as PyTorch does)
        // for a window that misses the input: nothing to route. Any other
        // out-of-plane index is the caller's error.
        const Window win = max_window(g, o / g.Wo, o % g.Wo);
        if (win.h0 < win.h1 && win.w0 < win.w1)
            fail(msg("max_pool2d_backward: indices must lie in [0, ", HW, ") (positions in an ",
                     g.H, "x", g.W, " plane), got ", ip[o]));
    }
}

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, std::int64_t* indices) {
    const index_t HW = g.H * g.W, HoWo = g.Ho * g.Wo;
    const MaxPoolPlanes<T> planes(g, threads_for(g.N * g.C), false);
    parallel_for(g.N * g.C, [&](index_t plane, int tid) {
        planes.run(x + plane * HW, y + plane * HoWo, indices ? indices + plane * HoWo : nullptr,
                   tid);
    }, work_per_plane(g));
}

template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* dy, const T* x,
                         const std::int64_t* indices, T* dx) {
    const index_t HW = g.H * g.W, HoWo = g.Ho * g.Wo;
    const MaxPoolPlanes<T> planes(g, indices ? 0 : threads_for(g.N * g.C), !indices);
    parallel_for(g.N * g.C, [&](index_t plane, int tid) {
        const std::int64_t* ip = indices ? indices + plane * HoWo : planes.idx(tid);
        if (!indices) planes.run(x + plane * HW, planes.y(tid), planes.idx(tid), tid);
        route_to_argmax(g, dy + plane * HoWo, ip, dx + plane * HW);
    }, work_per_plane(g));
}

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const AvgPoolOptions& opt, const T* x, T* y) {
    const index_t HW = g.H * g.W, HoWo = g.Ho * g.Wo;
    parallel_for(g.N * g.C, [&](index_t plane, int) {
        const T* xp = x + plane * HW;
        T* yp = y + plane * HoWo;
        for (index_t oh = 0; oh < g.Ho; ++oh)
            for (index_t ow = 0; ow < g.Wo; ++ow) {
                const AvgWindow win = avg_window(g, opt, oh, ow);
                T sum = T(0);
                for (index_t ih = win.h0; ih < win.h1; ++ih)
                    for (index_t iw = win.w0; iw < win.w1; ++iw) sum += xp[ih * g.W + iw];
                yp[oh * g.Wo + ow] = average(g, win, sum);
            }
    }, work_per_plane(g));
}

template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const AvgPoolOptions& opt, const T* dy, T* dx) {
    const index_t HW = g.H * g.W, HoWo = g.Ho * g.Wo;
    parallel_for(g.N * g.C, [&](index_t plane, int) {
        const T* dyp = dy + plane * HoWo;
        T* dxp = dx + plane * HW;
        std::fill(dxp, dxp + HW, T(0));
        for (index_t oh = 0; oh < g.Ho; ++oh)
            for (index_t ow = 0; ow < g.Wo; ++ow) {
                const AvgWindow win = avg_window(g, opt, oh, ow);
                const T share = average(g, win, dyp[oh * g.Wo + ow]);
                for (index_t ih = win.h0; ih < win.h1; ++ih)
                    for (index_t iw = win.w0; iw < win.w1; ++iw) dxp[ih * g.W + iw] += share;
            }
    }, work_per_plane(g));
}

#define CONVEXT_INSTANTIATE(T)                                                                  \
    template void max_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*, std::int64_t*);    \
    template void max_pool2d_backward<T>(const Pool2dGeometry&, const T*, const T*,             \
                                         const std::int64_t*, T*);                              \
    template void avg_pool2d_forward<T>(const Pool2dGeometry&, const AvgPoolOptions&, const T*, \
                                        T*);                                                    \
    template void avg_pool2d_backward<T>(const Pool2dGeometry&, const AvgPoolOptions&, const T*, \
                                         T*);
CONVEXT_INSTANTIATE(float)
CONVEXT_INSTANTIATE(double)

}  // namespace convext
