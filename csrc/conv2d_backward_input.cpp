// Input gradient: the *full* correlation of the stride-dilated output gradient
// with the 180-degree-rotated filter, channels swapped (K <-> C per group).
//
//   dx[n,c,ih,iw] = sum_{k,r,s} w[k,c,r,s] * dyd[n,k, ih + ph - r*dh, iw + pw - s*dw]
//                 = sum_{k,r',s'} rot(w)[c,k,r',s'] * dyd[n,k, ih + r'*dh - (dh*(R-1) - ph), ...]
//
// with dyd = dy with (stride - 1) zeros between neighbours and r' = R-1-r: a
// forward correlation with input dilation = stride, stride 1, the forward's
// dilation and padding dh*(R-1) - ph (negative padding crops). Input rows the
// forward stride skipped fall outside dyd and get 0.
#include <algorithm>

#include "conv2d.hpp"
#include "parallel.hpp"

namespace convext {

template <class T>
void conv2d_backward_input(const Conv2dGeometry& g, const T* dy, const T* w, T* dx) {
    const index_t Kg = g.Kg(), Cg = g.Cg(), RS = g.R * g.S;

    // rot180 and swap the channel axes per group: (K, Cg, R, S) -> (C, Kg, R, S).
    Buffer<T> wt(checked_mul(g.K, Cg * RS, "conv2d_input_grad"), "rotated weights");
    parallel_for(g.K, [&](index_t k, int) {
        const index_t grp = k / Kg, kk = k % Kg;
        for (index_t c = 0; c < Cg; ++c) {
            const T* src = w + (k * Cg + c) * RS;
            T* dst = wt.data() + ((grp * Cg + c) * Kg + kk) * RS;
            std::reverse_copy(src, src + RS, dst);  // rot180 of an R x S plane
        }
    });

    CorrelationPlan p;
    p.N = g.N, p.C = g.K, p.H = g.Ho, p.W = g.Wo;
    p.K = g.C, p.R = g.R, p.S = g.S, p.groups = g.groups;
    p.in_dilation = g.stride;
    p.stride = {1, 1};
    p.dilation = g.dilation;
    p.pad = {g.dilation.h * (g.R - 1) - g.padding.h, g.dilation.w * (g.S - 1) - g.padding.w};
    p.Ho = g.H, p.Wo = g.W;
    correlate_nchw(p, dy, wt.data(), static_cast<const T*>(nullptr), dx);
}

template void conv2d_backward_input<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_input<double>(const Conv2dGeometry&, const double*, const double*,
                                            double*);

}  // namespace convext
