// One registration function per op family; module.cpp calls them all.
#pragma once

#include <pybind11/pybind11.h>

namespace convext::bind {
void register_conv(pybind11::module_& m);
void register_pool(pybind11::module_& m);
void register_elementwise(pybind11::module_& m);
void register_correlate(pybind11::module_& m);
void register_config(pybind11::module_& m);
}  // namespace convext::bind
