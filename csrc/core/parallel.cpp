#include "core/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace convext {
namespace {

// A count within what set_num_threads() accepts (OMP_NUM_THREADS=100000 is
// read as kMaxThreads).
int clamp_threads(int n) { return std::clamp(n, 1, kMaxThreads); }

#ifdef _OPENMP
// The max-threads ICV a thread starts with (OMP_NUM_THREADS or all cores),
// read once, at load time.
const int kDefaultIcv = omp_get_max_threads();
// The process-wide count set_num_threads() chose (the default until then).
std::atomic<int> g_threads{clamp_threads(kDefaultIcv)};
// The ICV set_num_threads() left on this thread, or 0 if never called here.
thread_local int tl_icv_we_set = 0;
#endif

// The count the live ThreadSnapshot of this thread took, or 0.
thread_local int tl_snapshot = 0;

// fork(): libgomp keeps the thread pool of a thread that started a team and
// does not rebuild it in a child, where those pool threads do not exist: the
// child's first parallel region waits for them forever. So a child forked
// after convext started a team runs every call on its calling thread (no
// OpenMP region is entered again in that process). A child forked before any
// team was started keeps its threads (libgomp builds a fresh pool there).
std::atomic<bool> g_team_started{false};
std::atomic<bool> g_serial_after_fork{false};

#if defined(__unix__) || defined(__APPLE__)
void on_fork_child() {
    if (g_team_started.load(std::memory_order_relaxed))
        g_serial_after_fork.store(true, std::memory_order_relaxed);
}
[[maybe_unused]] const int kAtFork = pthread_atfork(nullptr, nullptr, on_fork_child);
#endif

}  // namespace

void note_team_started() {
    if (!g_team_started.load(std::memory_order_relaxed))
        g_team_started.store(true, std::memory_order_relaxed);
}

void set_num_threads(int n) {
    if (n < 1) fail(msg("set_num_threads: n must be >= 1, got ", n));
#ifdef _OPENMP
    g_threads.store(n);
    omp_set_num_threads(n);
    tl_icv_we_set = n;
#endif
}

// OpenMP keeps the thread count per thread (an ICV), so set_num_threads()
// alone could not reach calls from other Python threads: convext keeps its own
// process-wide count and uses it, unless this thread's ICV was changed by
// someone else (threadpoolctl.threadpool_limits, omp_set_num_threads): then
// that limit wins for calls from this thread.
int get_num_threads() {
    if (g_serial_after_fork.load(std::memory_order_relaxed)) return 1;
#ifdef _OPENMP
    const int icv = omp_get_max_threads();
    const int ours = tl_icv_we_set ? tl_icv_we_set : kDefaultIcv;
    return clamp_threads(icv != ours ? icv : g_threads.load());
#else
    return 1;
#endif
}

ThreadSnapshot::ThreadSnapshot() : previous_(tl_snapshot) {
    if (!previous_) tl_snapshot = get_num_threads();
}

ThreadSnapshot::~ThreadSnapshot() { tl_snapshot = previous_; }

int call_threads() {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
#endif
    return tl_snapshot ? tl_snapshot : get_num_threads();
}

bool openmp_enabled() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

}  // namespace convext
