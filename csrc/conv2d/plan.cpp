#include "conv2d/plan.hpp"

#include <algorithm>

namespace convext {
namespace {

std::string geometry_str(const Conv2dGeometry& g) {
    return msg("x ", shape_str(g.x_shape()), ", weight ", shape_str(g.w_shape()), ", stride (",
               g.stride.h, ", ", g.stride.w, "), padding (", g.padding.h, ", ", g.padding.w,
               "), dilation (", g.dilation.h, ", ", g.dilation.w, "), groups ", g.groups);
}

template <class A>
void require_runs(const char* op, const char* direction, A algo, bool runs,
                  const Conv2dGeometry& g, const char* rule) {
    if (!runs)
        throw std::invalid_argument(msg(op, ": the ", direction, " algorithm '", algo_name(algo),
                                        "' cannot run ", geometry_str(g), " (it needs ", rule,
                                        ")"));
}

}  // namespace

Conv2dPlan make_conv2d_plan(const char* op, const Conv2dGeometry& g, std::size_t elem_size,
                            const Conv2dAlgoRequest& force) {
    Conv2dPlan plan;
    plan.g = g;
    plan.elem_size = elem_size;
    const CorrelationPlan fp = forward_plan(g);
    plan.forward = force.forward ? *force.forward : select_correlation(fp);
    plan.input_grad = force.input_grad ? *force.input_grad : select_input_grad(g);
    plan.weight_grad = force.weight_grad ? *force.weight_grad : select_weight_grad(g);
    plan.input_core = force.input_core;
    const char* winograd_rule = "a 3x3 filter, stride 1, no dilation and an output of 4x4 or more";
    if (force.forward)
        require_runs(op, "forward", plan.forward, can_run(plan.forward, fp), g,
                     is_winograd(plan.forward) ? winograd_rule : "stride 1");
    if (force.weight_grad)
        require_runs(op, "weight-gradient", plan.weight_grad, can_run(plan.weight_grad, g), g,
                     winograd_rule);
    if (force.input_core) {
        require_runs(op, "input-gradient", plan.input_grad,
                     plan.input_grad == InputGradAlgo::phases, g,
                     "the phase split to take a correlation core");
        require_runs(op, "input-gradient core", *plan.input_core,
                     plan.input_core_runs(*plan.input_core), g,
                     is_winograd(*plan.input_core)
                         ? "stride 1 and, for every phase, a 3x3 undilated sub-filter with an "
                           "output of 4x4 or more"
                         : "stride 1 (each phase's correlation is stride 1, so it always can)");
    }
    return plan;
}

std::string Conv2dPlan::input_grad_name() const {
    std::string name = algo_name(input_grad);
    if (input_grad != InputGradAlgo::phases) return name;
    std::vector<CorrAlgo> seen;
    std::string cores;
    for (CorrAlgo c : input_cores()) {
        if (std::find(seen.begin(), seen.end(), c) != seen.end()) continue;
        seen.push_back(c);
        cores += (cores.empty() ? "" : ",") + std::string(algo_name(c));
    }
    return name + "[" + cores + "]";
}

}  // namespace convext
