#include "parallel.hpp"

#include <atomic>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace convext {
namespace {

#ifdef _OPENMP
// The calling thread's max-threads ICV as it is when nobody changed it: read
// once, at load time, on the loading thread (OMP_NUM_THREADS or all cores).
const int kDefaultIcv = omp_get_max_threads();
std::atomic<int> g_threads{kDefaultIcv};
#endif

}  // namespace

void set_num_threads(int n) {
    if (n < 1) fail(msg("set_num_threads: n must be >= 1, got ", n));
#ifdef _OPENMP
    g_threads.store(n);
    omp_set_num_threads(n);
#endif
}

int get_num_threads() {
#ifdef _OPENMP
    const int icv = omp_get_max_threads();
    return icv != kDefaultIcv ? icv : g_threads.load();
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
