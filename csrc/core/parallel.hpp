// parallel_for: a static partition of [0, n) over the calling thread's convext
// thread count. Work items must not depend on which thread runs them: results
// are then bitwise identical for any thread count.
#pragma once

#include "core/common.hpp"

#include <exception>
#include <mutex>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace convext {

// Below this much work (roughly: multiply-adds or elements touched) waking
// the thread team costs more than it saves: run on the calling thread.
constexpr index_t kMinParallelWork = index_t(1) << 16;

// fn(item, thread_id) for item in [0, n). `cost` estimates the work of one
// item. Exceptions thrown by fn are re-thrown on the caller.
template <class Fn>
void parallel_for(index_t n, Fn&& fn, index_t cost = kMinParallelWork) {
    if (n <= 0) return;
    int nt = static_cast<int>(n < get_num_threads() ? n : get_num_threads());
    if (cost < kMinParallelWork && n * cost < kMinParallelWork) nt = 1;
    if (nt <= 1) {
        for (index_t i = 0; i < n; ++i) fn(i, 0);
        return;
    }
    std::exception_ptr error;
    std::mutex error_mutex;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (index_t i = 0; i < n; ++i) {
        try {
#ifdef _OPENMP
            fn(i, omp_get_thread_num());
#else
            fn(i, 0);
#endif
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

// Threads parallel_for(n, ...) will use: size per-thread scratch with this.
inline int threads_for(index_t n) {
    const int t = get_num_threads();
    return static_cast<int>(n < t ? (n < 1 ? 1 : n) : t);
}

}  // namespace convext
