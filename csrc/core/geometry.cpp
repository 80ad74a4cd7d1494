#include "core/geometry.hpp"

namespace convext {

std::string shape_str(const Shape& s) {
    std::ostringstream os;
    os << '(';
    for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    if (s.size() == 1) os << ',';
    os << ')';
    return os.str();
}

index_t numel(const char* op, const Shape& s, const char* what) {
    index_t n = 1;
    for (index_t d : s) n = checked_mul(n, d, op, what);
    return n;
}

namespace {

void check_ndim(const char* op, const char* name, const Shape& s, std::size_t ndim,
                const char* layout) {
    if (s.size() != ndim)
        fail(msg(op, ": ", name, " must be ", ndim, "-D ", layout, ", got ", s.size(),
                 "-D shape ", shape_str(s)));
    for (index_t d : s)
        if (d < 1)
            fail(msg(op, ": ", name, " must have every dimension >= 1 (no empty arrays), got ",
                     "shape ", shape_str(s)));
}

void check_at_least(const char* op, const char* name, Pair p, index_t lo) {
    if (p.h < lo || p.w < lo) fail(msg(op, ": ", name, " must be >= ", lo, ", got ", p));
}

// Input size plus padding on both sides; effective (dilated) kernel size.
index_t padded(const char* op, index_t size, index_t pad) {
    return checked_add(size, checked_mul(2, pad, op, "padding"), op, "padded input size");
}
index_t dilated(const char* op, index_t kernel, index_t dilation) {
    return checked_add(checked_mul(dilation, kernel - 1, op, "dilation * (kernel_size - 1)"), 1, op,
                       "dilated kernel size");
}

// Output length of a sliding window over `in` (already padded): floor or ceil.
index_t window_count(index_t padded, index_t eff_kernel, index_t stride, bool ceil_mode) {
    const index_t span = padded - eff_kernel;
    return (ceil_mode ? ceil_div(span, stride) : span / stride) + 1;
}

}  // namespace

Conv2dGeometry make_conv2d_geometry(const char* op, const Shape& x, const Shape& w, Pair stride,
                                    Pair padding, Pair dilation, index_t groups,
                                    const char* x_name, const char* w_name) {
    check_ndim(op, x_name, x, 4, "(N, C, H, W)");
    check_ndim(op, w_name, w, 4, "(K, C/groups, R, S)");
    check_at_least(op, "stride", stride, 1);
    check_at_least(op, "dilation", dilation, 1);
    check_at_least(op, "padding", padding, 0);
    if (groups < 1) fail(msg(op, ": groups must be >= 1, got ", groups));
    numel(op, x);
    numel(op, w);

    Conv2dGeometry g;
    g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3];
    g.K = w[0], g.R = w[2], g.S = w[3];
    g.groups = groups, g.stride = stride, g.padding = padding, g.dilation = dilation;
    if (g.C % groups != 0)
        fail(msg(op, ": ", x_name, " has ", g.C, " channels, which groups=", groups,
                 " does not divide"));
    if (g.K % groups != 0)
        fail(msg(op, ": ", w_name, " has ", g.K, " output channels, which groups=", groups,
                 " does not divide"));
    if (checked_mul(w[1], groups, op) != g.C)
        fail(msg(op, ": ", x_name, " has ", g.C, " channels but ", w_name, " expects ",
                 w[1] * groups, " (groups=", groups, ")"));

    const index_t Hp = padded(op, g.H, padding.h), Wp = padded(op, g.W, padding.w);
    const index_t Re = dilated(op, g.R, dilation.h), Se = dilated(op, g.S, dilation.w);
    if (Hp < Re || Wp < Se)
        fail(msg(op, ": padded input ", Hp, "x", Wp, " is smaller than the dilated kernel ", Re,
                 "x", Se));
    g.Ho = window_count(Hp, Re, stride.h, false);
    g.Wo = window_count(Wp, Se, stride.w, false);
    numel(op, g.y_shape(), "output size");
    return g;
}

namespace {
void check_forward_output_shape(const char* op, const Shape& expected, const Shape& go) {
    if (go != expected)
        fail(msg(op, ": grad_out must have the forward output's shape ", shape_str(expected),
                 ", got ", shape_str(go)));
}
}  // namespace

void check_grad_out(const char* op, const Conv2dGeometry& g, const Shape& go) {
    check_forward_output_shape(op, g.y_shape(), go);
}

void check_bias(const char* op, const Conv2dGeometry& g, const Shape& b) {
    if (b.size() != 1 || b[0] != g.K)
        fail(msg(op, ": bias must have shape (", g.K, ",) to match weight's ", g.K,
                 " output channels, got ", shape_str(b)));
}

Pool2dGeometry make_pool2d_geometry(const char* op, const Shape& x, Pair kernel, Pair stride,
                                    Pair padding, Pair dilation, bool ceil_mode,
                                    const char* x_name) {
    check_ndim(op, x_name, x, 4, "(N, C, H, W)");
    check_at_least(op, "kernel_size", kernel, 1);
    check_at_least(op, "stride", stride, 1);
    check_at_least(op, "dilation", dilation, 1);
    check_at_least(op, "padding", padding, 0);
    if (padding.h > kernel.h / 2 || padding.w > kernel.w / 2)
        fail(msg(op, ": padding must be at most half of kernel_size, got padding=", padding,
                 " and kernel_size=", kernel));
    checked_mul(kernel.h, kernel.w, op, "kernel_size area");
    numel(op, x);

    Pool2dGeometry g;
    g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3];
    g.kernel = kernel, g.stride = stride, g.padding = padding, g.dilation = dilation;
    g.ceil_mode = ceil_mode;
    // PyTorch's pooling_output_shape: floor division (also of negative spans:
    // with ceil_mode a window may overhang a too-small input), then with
    // ceil_mode the last window must start inside the input or the left/top
    // padding, never entirely in the right/bottom padding.
    auto out_size = [&](index_t size, index_t pad, index_t eff, index_t s) {
        const index_t span = checked_add(padded(op, size, pad), -eff + (ceil_mode ? s - 1 : 0), op,
                                         "pooled size");
        index_t o = (span >= 0 ? span / s : -ceil_div(-span, s)) + 1;
        if (ceil_mode && o > 0 && (o - 1) * s >= size + pad) --o;
        return o;
    };
    g.Ho = out_size(g.H, padding.h, dilated(op, kernel.h, dilation.h), stride.h);
    g.Wo = out_size(g.W, padding.w, dilated(op, kernel.w, dilation.w), stride.w);
    if (g.Ho < 1 || g.Wo < 1)
        fail(msg(op, ": output size ", g.Ho, "x", g.Wo, " is too small: input ", g.H, "x", g.W,
                 " with padding=", padding, " is smaller than the dilated kernel ",
                 dilated(op, kernel.h, dilation.h), "x", dilated(op, kernel.w, dilation.w)));
    numel(op, g.y_shape(), "output size");
    return g;
}

Pool2dGeometry make_adaptive_pool2d_geometry(const char* op, const Shape& x, Pair output_size,
                                             const char* x_name) {
    check_ndim(op, x_name, x, 4, "(N, C, H, W)");
    check_at_least(op, "output_size", output_size, 1);
    numel(op, x);
    Pool2dGeometry g;
    g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3];
    g.adaptive = true;
    g.Ho = output_size.h, g.Wo = output_size.w;
    // the largest window: ceil(H/Ho) rows, one more when the windows overlap
    g.kernel = {std::min(g.H, ceil_div(g.H, g.Ho) + 1), std::min(g.W, ceil_div(g.W, g.Wo) + 1)};
    numel(op, g.y_shape(), "output size");
    return g;
}

void check_grad_out(const char* op, const Pool2dGeometry& g, const Shape& go) {
    check_forward_output_shape(op, g.y_shape(), go);
}

CorrMode parse_corr_mode(const char* op, const std::string& mode) {
    if (mode == "valid") return CorrMode::valid;
    if (mode == "full") return CorrMode::full;
    if (mode == "same") return CorrMode::same;
    fail(msg(op, ": mode must be 'valid', 'full' or 'same', got '", mode, "'"));
}

Correlate2dGeometry make_correlate2d_geometry(const char* op, const Shape& in1, const Shape& in2,
                                              CorrMode mode, bool convolve) {
    check_ndim(op, "in1", in1, 2, "(H, W)");
    check_ndim(op, "in2", in2, 2, "(R, S)");
    Correlate2dGeometry g;
    g.H = in1[0], g.W = in1[1], g.R = in2[0], g.S = in2[1];
    switch (mode) {
        case CorrMode::valid: {
            const bool in1_larger = g.H >= g.R && g.W >= g.S;
            const bool in2_larger = g.R >= g.H && g.S >= g.W;
            if (!in1_larger && !in2_larger)
                fail(msg(op, ": in 'valid' mode one input must be at least as large as the "
                             "other in every dimension, got in1 ",
                         shape_str(in1), " and in2 ", shape_str(in2)));
            if (!in1_larger) {
                std::swap(g.H, g.R);
                std::swap(g.W, g.S);
                g.swapped = true;
            }
            g.Ho = g.H - g.R + 1, g.Wo = g.W - g.S + 1;
            break;
        }
        case CorrMode::full:
            g.pad = {g.R - 1, g.S - 1};
            g.Ho = g.H + g.R - 1, g.Wo = g.W + g.S - 1;
            break;
        case CorrMode::same:
            // scipy centres 'same' on the convolution: its output starts
            // (R-1)//2 rows into the full convolution, i.e. R//2 rows into the
            // full correlation. As top/left padding of in1: R//2 for the
            // convolution (a correlation with the rotated kernel), (R-1)//2
            // for the correlation.
            g.pad = convolve ? Pair{g.R / 2, g.S / 2} : Pair{(g.R - 1) / 2, (g.S - 1) / 2};
            g.Ho = g.H, g.Wo = g.W;
            break;
    }
    numel(op, {g.Ho, g.Wo});
    return g;
}

}  // namespace convext
