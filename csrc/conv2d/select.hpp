// Every algorithm of the conv2d family, one enum per direction, and the one
// selector per direction that picks among them (ATen's ConvBackend +
// select_conv_backend). The thresholds they use sit in select.cpp, each next
// to the measurement behind it. Tests and benchmarks can force an algorithm
// (Conv2dAlgoRequest); one that cannot run a shape is refused with a message.
#pragma once

#include <optional>
#include <string>

#include "conv2d/conv2d.hpp"

namespace convext {

// The correlation core: the forward pass, and each stride phase of the input
// gradient (a stride-1 correlation of dy with a rotated sub-filter).
enum class CorrAlgo {
    shift_add,      // GEMM over input positions, then shifted adds (few outputs, many inputs)
    direct,         // register-blocked direct loop (few output channels per group)
    direct_planes,  // the direct sums over whole flattened phase planes (small depthwise planes)
    winograd_2x2,   // Winograd F(2x2, 3x3) (3x3, stride 1, undilated; a direct sum's error)
    winograd_4x4,   // Winograd F(4x4, 3x3) (faster, ~20x less exact: opt-in)
    indirect_gemm,  // GEMM reading phase planes in place (everything else)
};

enum class InputGradAlgo {
    phases,             // split dx by stride phase; each phase runs a correlation core
    strided_shift_add,  // GEMM over dy's positions, shifted adds into phase planes (the stem)
};

enum class WeightGradAlgo {
    depthwise,  // per output channel, all taps per pass (few output channels per group)
    depthwise_planes,  // the same over whole flattened tap planes (small planes)
    winograd_2x2,  // transformed x and dy tiles, one GEMM per transformed position
    winograd_4x4,  // the same with F(4x4, 3x3) tiles (opt-in)
    dot,        // dot products of dy with each tap's plane (few input channels per group)
    gemm,       // dy times the gathered patches (everything else)
};

// Products per running sum of the direct loops: the float32 error of one
// running sum grows with its length (a stem's input gradient sums 1024
// products per output), so the direct loop sums blocks of channels of about
// this many products each and adds the block sums in order, as a blocked
// GEMM does; direct_planes takes only layers whose taps fit one block.
constexpr index_t kDirectSumTerms = 64;

inline bool is_winograd(CorrAlgo a) {
    return a == CorrAlgo::winograd_2x2 || a == CorrAlgo::winograd_4x4;
}
inline bool is_winograd(WeightGradAlgo a) {
    return a == WeightGradAlgo::winograd_2x2 || a == WeightGradAlgo::winograd_4x4;
}

const char* algo_name(CorrAlgo a);
const char* algo_name(InputGradAlgo a);
const char* algo_name(WeightGradAlgo a);
// The algorithm called `name`, or invalid_argument listing the valid names.
CorrAlgo parse_corr_algo(const char* op, const std::string& name);
InputGradAlgo parse_input_grad_algo(const char* op, const std::string& name);
WeightGradAlgo parse_weight_grad_algo(const char* op, const std::string& name);

// Whether the strided shift-add's phase planes stay within the output's size
// (taps far apart on a small input would make them grow with the dilation).
bool shift_add_spans_fit(const Conv2dGeometry& g);

// What each algorithm can compute at all (correctness, not speed).
bool can_run(CorrAlgo a, const CorrelationPlan& p);
bool can_run(InputGradAlgo a, const Conv2dGeometry& g);
bool can_run(WeightGradAlgo a, const Conv2dGeometry& g);

// The selectors: the fastest algorithm for a shape (the thresholds are measured).
CorrAlgo select_correlation(const CorrelationPlan& p);
InputGradAlgo select_input_grad(const Conv2dGeometry& g);
WeightGradAlgo select_weight_grad(const Conv2dGeometry& g);

// Algorithms a caller asks for instead of the selectors' choice (unset: select).
// input_core forces the correlation core of every input-gradient phase.
struct Conv2dAlgoRequest {
    std::optional<CorrAlgo> forward, input_core;
    std::optional<InputGradAlgo> input_grad;
    std::optional<WeightGradAlgo> weight_grad;
};

}  // namespace convext
