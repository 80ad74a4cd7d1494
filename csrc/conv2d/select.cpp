// The conv2d algorithm selectors and every threshold they use, each with its
// reason (the measurements behind them: docs/performance.md, "Design
// measurements").
#include "conv2d/select.hpp"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <string>

namespace convext {
namespace {

// Below this many output channels per group a GEMM tile over output
// positions (6 or 8 rows) would be mostly padding: depthwise layers,
// scipy-style 2-D correlation and the input gradient of layers with few
// input channels run the shift-add GEMM or the direct loop instead.
constexpr index_t kMinGemmRows = 4;

// Winograd below 12x12 outputs loses to the GEMM (few tiles: little
// parallelism, the filter transform not amortised) and wins from 14x14 up.
// F(4x4) needs 16 channels each way for its transforms to pay off; F(2x2),
// with 16 GEMMs of depth Cg per 4 outputs (F(4x4): 36 per 16), beats the
// indirect GEMM only from 128 channels each way (at 64, the GEMMs' stores and
// the transforms' traffic cancel its 2.25x fewer multiplications).
constexpr index_t kWinogradMinOutputs = 12 * 12;
constexpr index_t kWinograd4x4MinChannels = 16;
constexpr index_t kWinograd2x2MinChannels = 128;

// Which Winograd variant the selectors take where Winograd pays, from
// CONVEXT_WINOGRAD: F(2x2, 3x3) by default (float32 errors at PyTorch's
// level); "4x4" takes F(4x4, 3x3), faster but about 20x less exact, for
// whoever asks for it; "0" none (to compare, and to test the indirect GEMM on
// the layers Winograd would take).
enum class WinogradChoice { none, f2x2, f4x4 };

WinogradChoice winograd_choice() {
    static const WinogradChoice choice = [] {
        const char* v = std::getenv("CONVEXT_WINOGRAD");
        if (v && v[0] == '0') return WinogradChoice::none;
        if (v && std::string(v) == "4x4") return WinogradChoice::f4x4;
        return WinogradChoice::f2x2;
    }();
    return choice;
}

bool is_3x3_unit(const CorrelationPlan& p) {
    return p.R == 3 && p.S == 3 && p.stride.h == 1 && p.stride.w == 1 && p.dilation.h == 1 &&
           p.dilation.w == 1;
}

// The Winograd variant of CONVEXT_WINOGRAD where it pays for p, else the
// indirect GEMM.
CorrAlgo winograd_or_gemm(const CorrelationPlan& p) {
    const WinogradChoice choice = winograd_choice();
    if (choice == WinogradChoice::none || !can_run(CorrAlgo::winograd_2x2, p) ||
        p.Ho * p.Wo < kWinogradMinOutputs)
        return CorrAlgo::indirect_gemm;
    const bool f4 = choice == WinogradChoice::f4x4;
    const index_t min_channels = f4 ? kWinograd4x4MinChannels : kWinograd2x2MinChannels;
    if (p.Kg() < min_channels || p.Cg() < min_channels) return CorrAlgo::indirect_gemm;
    return f4 ? CorrAlgo::winograd_4x4 : CorrAlgo::winograd_2x2;
}

// Few output channels but enough input channels to make a GEMM deep, enough
// taps to fill its register tiles, stride 1, and images x groups enough for
// its one task per image and group (a fixed count: the path, hence the
// rounding, must not depend on the thread count): multiply, then shift and
// add (lenet5x5's input gradient: over twice the direct loop's speed; the
// stem's stride phases gain nothing, and they come one image at a time).
bool shift_add_pays(const CorrelationPlan& p) {
    return can_run(CorrAlgo::shift_add, p) && p.Cg() >= 8 && p.Kg() * p.R * p.S >= 8 &&
           p.N * p.groups >= 8;
}

// With a stride and few input channels (the stem: 3), the phases are small
// correlations one image at a time: the transposed form, one GEMM for every
// tap of every phase (the stem's input gradient: about 15% faster than its
// phases). Enough images x groups for its one task per (image, group).
bool strided_shift_add_pays(const Conv2dGeometry& g) {
    return g.Cg() < 4 && g.Kg() >= 8 && g.Cg() * g.R * g.S >= 8 && g.N * g.groups >= 8 &&
           (g.stride.h > 1 || g.stride.w > 1) && g.stride.h <= 4 && g.stride.w <= 4 &&
           shift_add_spans_fit(g);
}

// direct_planes sums every tap of an output in one running sum, as the
// direct loop does for one block of channels (kDirectSumTerms): so the
// channels of one such block, and planes small enough to stay in cache.
constexpr index_t kPlanesMaxSide = 64;

bool planes_fit(index_t Ho, index_t Wo) { return Ho <= kPlanesMaxSide && Wo <= kPlanesMaxSide; }

bool direct_planes_fits(const CorrelationPlan& p) {
    return p.Cg() <= std::max<index_t>(1, kDirectSumTerms / (p.R * p.S)) && planes_fit(p.Ho, p.Wo);
}

// The dot-product weight gradient serves layers with few input channels per
// group (first layers: their few planes stay in cache while dy streams,
// well ahead of the GEMM; with 64 channels, down1x1s2, the GEMM is faster).
constexpr index_t kDotMaxChannels = 4;

template <class E, std::size_t N>
E parse(const char* op, const char* what, const std::string& name, const E (&all)[N]) {
    std::string names;
    for (E a : all) {
        if (name == algo_name(a)) return a;
        names += names.empty() ? "" : ", ";
        names += algo_name(a);
    }
    throw std::invalid_argument(
        msg(op, ": unknown ", what, " algorithm '", name, "' (one of: ", names, ")"));
}

constexpr CorrAlgo kCorrAlgos[] = {CorrAlgo::shift_add, CorrAlgo::direct, CorrAlgo::direct_planes,
                                   CorrAlgo::winograd_2x2, CorrAlgo::winograd_4x4,
                                   CorrAlgo::indirect_gemm};
constexpr InputGradAlgo kInputGradAlgos[] = {InputGradAlgo::phases,
                                             InputGradAlgo::strided_shift_add};
constexpr WeightGradAlgo kWeightGradAlgos[] = {
    WeightGradAlgo::depthwise, WeightGradAlgo::depthwise_planes, WeightGradAlgo::winograd_2x2, WeightGradAlgo::winograd_4x4,
    WeightGradAlgo::dot, WeightGradAlgo::gemm};

}  // namespace

const char* algo_name(CorrAlgo a) {
    switch (a) {
        case CorrAlgo::shift_add: return "shift_add";
        case CorrAlgo::direct: return "direct";
        case CorrAlgo::direct_planes: return "direct_planes";
        case CorrAlgo::winograd_2x2: return "winograd_2x2";
        case CorrAlgo::winograd_4x4: return "winograd_4x4";
        case CorrAlgo::indirect_gemm: return "indirect_gemm";
    }
    return "?";
}

const char* algo_name(InputGradAlgo a) {
    switch (a) {
        case InputGradAlgo::phases: return "phases";
        case InputGradAlgo::strided_shift_add: return "strided_shift_add";
    }
    return "?";
}

const char* algo_name(WeightGradAlgo a) {
    switch (a) {
        case WeightGradAlgo::depthwise: return "depthwise";
        case WeightGradAlgo::depthwise_planes: return "depthwise_planes";
        case WeightGradAlgo::winograd_2x2: return "winograd_2x2";
        case WeightGradAlgo::winograd_4x4: return "winograd_4x4";
        case WeightGradAlgo::dot: return "dot";
        case WeightGradAlgo::gemm: return "gemm";
    }
    return "?";
}

CorrAlgo parse_corr_algo(const char* op, const std::string& name) {
    return parse(op, "correlation", name, kCorrAlgos);
}
InputGradAlgo parse_input_grad_algo(const char* op, const std::string& name) {
    return parse(op, "input-gradient", name, kInputGradAlgos);
}
WeightGradAlgo parse_weight_grad_algo(const char* op, const std::string& name) {
    return parse(op, "weight-gradient", name, kWeightGradAlgos);
}

bool can_run(CorrAlgo a, const CorrelationPlan& p) {
    switch (a) {
        case CorrAlgo::shift_add: return p.stride.h == 1 && p.stride.w == 1;
        case CorrAlgo::winograd_2x2:
        case CorrAlgo::winograd_4x4: return is_3x3_unit(p) && p.Ho >= 4 && p.Wo >= 4;
        case CorrAlgo::direct:
        case CorrAlgo::direct_planes:
        case CorrAlgo::indirect_gemm: return true;
    }
    return false;
}

bool can_run(InputGradAlgo a, const Conv2dGeometry& g) {
    return a != InputGradAlgo::strided_shift_add || shift_add_spans_fit(g);
}

bool can_run(WeightGradAlgo a, const Conv2dGeometry& g) {
    return !is_winograd(a) || can_run(CorrAlgo::winograd_2x2, forward_plan(g));
}

CorrAlgo select_correlation(const CorrelationPlan& p) {
    if (p.Kg() < kMinGemmRows) {
        if (shift_add_pays(p)) return CorrAlgo::shift_add;
        return direct_planes_fits(p) ? CorrAlgo::direct_planes : CorrAlgo::direct;
    }
    return winograd_or_gemm(p);
}

InputGradAlgo select_input_grad(const Conv2dGeometry& g) {
    return strided_shift_add_pays(g) ? InputGradAlgo::strided_shift_add : InputGradAlgo::phases;
}

WeightGradAlgo select_weight_grad(const Conv2dGeometry& g) {
    if (g.Kg() < kMinGemmRows)
        return planes_fit(g.Ho, g.Wo) ? WeightGradAlgo::depthwise_planes : WeightGradAlgo::depthwise;
    switch (winograd_or_gemm(forward_plan(g))) {
        case CorrAlgo::winograd_2x2: return WeightGradAlgo::winograd_2x2;
        case CorrAlgo::winograd_4x4: return WeightGradAlgo::winograd_4x4;
        default: break;
    }
    return g.Cg() <= kDotMaxChannels ? WeightGradAlgo::dot : WeightGradAlgo::gemm;
}

}  // namespace convext
