// A conv2d layer's plan: its checked geometry and the algorithm of each
// direction, built once (XNNPACK's create) and run many times (forward, input
// gradient, weight gradient of every step with these shapes).
#pragma once

#include <string>
#include <vector>

#include "conv2d/select.hpp"

namespace convext {

struct Conv2dPlan {
    Conv2dGeometry g;
    std::size_t elem_size = sizeof(float);  // the dtype's: float or double
    CorrAlgo forward = CorrAlgo::indirect_gemm;
    InputGradAlgo input_grad = InputGradAlgo::phases;
    std::optional<CorrAlgo> input_core;  // forced core of the input-gradient phases
    WeightGradAlgo weight_grad = WeightGradAlgo::gemm;

    // The correlation core of each input-gradient phase, in the order they
    // run (empty for strided_shift_add); whether `core` can run them all.
    std::vector<CorrAlgo> input_cores() const;
    bool input_core_runs(CorrAlgo core) const;
    // "phases[winograd]", "phases[indirect_gemm,direct]", "strided_shift_add".
    std::string input_grad_name() const;
};

// The plan of geometry g with the selectors' choices, except where `force`
// names an algorithm: invalid_argument (naming op, the algorithm and the
// shape) if it cannot run g.
Conv2dPlan make_conv2d_plan(const char* op, const Conv2dGeometry& g, std::size_t elem_size,
                            const Conv2dAlgoRequest& force = {});

// correlate_nchw with a given algorithm (can_run(algo, p) must hold).
template <class T>
void correlate_nchw(const CorrelationPlan& p, CorrAlgo algo, const T* x, const T* w, const T* bias,
                    T* y);

// Threaded; bitwise identical for any thread count. bias / db may be null.
template <class T>
void conv2d_forward(const Conv2dPlan& plan, const T* x, const T* w, const T* bias, T* y);
template <class T>
void conv2d_backward_input(const Conv2dPlan& plan, const T* dy, const T* w, T* dx);
// db: also the bias gradient (null: not), in the same pass over dy where the
// algorithm allows.
template <class T>
void conv2d_backward_weight(const Conv2dPlan& plan, const T* dy, const T* x, T* dw,
                            T* db = nullptr);

}  // namespace convext
