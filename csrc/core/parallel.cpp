#include "core/parallel.hpp"

#include <atomic>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace convext {
namespace {

#ifdef _OPENMP
// The max-threads ICV a thread starts with (OMP_NUM_THREADS or all cores),
// read once, at load time.
const int kDefaultIcv = omp_get_max_threads();
// The process-wide count set_num_threads() chose (the default until then).
std::atomic<int> g_threads{kDefaultIcv};
// The ICV set_num_threads() left on this thread, or 0 if never called here.
thread_local int tl_icv_we_set = 0;
#endif

}  // namespace

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
#ifdef _OPENMP
    const int icv = omp_get_max_threads();
    const int ours = tl_icv_we_set ? tl_icv_we_set : kDefaultIcv;
    return icv != ours ? icv : g_threads.load();
#else
    return 1;
#endif
}

bool openmp_enabled() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

}  // namespace convext
