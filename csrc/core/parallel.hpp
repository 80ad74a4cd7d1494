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

// One call's thread count. A call sizes per-thread scratch with threads_for()
// and then runs parallel_for(): both must see the same count, even while
// another thread calls set_num_threads() (a second reading could be larger
// than the first and a thread would index past the scratch). While a
// ThreadSnapshot lives on a thread, every threads_for() and parallel_for()
// of that thread uses the count it took when it was made; nested snapshots
// keep the outer one's. Every entry point of the engine takes one (the
// bindings do, with the GIL released: bind::without_gil).
class ThreadSnapshot {
public:
    ThreadSnapshot();
    ~ThreadSnapshot();
    ThreadSnapshot(const ThreadSnapshot&) = delete;
    ThreadSnapshot& operator=(const ThreadSnapshot&) = delete;

private:
    int previous_;
};

// The calling thread's snapshot, else get_num_threads(); 1 inside an OpenMP
// region (parallel_for does not nest).
int call_threads();

// Records that a thread team was started (fork handling, parallel.cpp).
void note_team_started();

// fn(item, thread_id) for item in [0, n). `cost` estimates the work of one
// item. Exceptions thrown by fn are re-thrown on the caller.
template <class Fn>
void parallel_for(index_t n, Fn&& fn, index_t cost = kMinParallelWork) {
    if (n <= 0) return;
    const int t = call_threads();
    int nt = static_cast<int>(n < t ? n : t);
    if (cost < kMinParallelWork && n * cost < kMinParallelWork) nt = 1;
    if (nt <= 1) {
        for (index_t i = 0; i < n; ++i) fn(i, 0);
        return;
    }
    note_team_started();
    std::exception_ptr error;
    std::mutex error_mutex;
    // num_threads(nt): OpenMP may give fewer threads, never more, so every
    // thread id is below the nt that threads_for() sized scratch with.
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

// Threads parallel_for(n, ...) will use at most: size per-thread scratch with
// this (under the same ThreadSnapshot as the parallel_for).
inline int threads_for(index_t n) {
    const int t = call_threads();
    return static_cast<int>(n < t ? (n < 1 ? 1 : n) : t);
}

}  // namespace convext
