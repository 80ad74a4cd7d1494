// Shared basics of the convext engine: index type, overflow-checked size
// arithmetic, error types, aligned scratch buffers and the thread count.
// Nothing here (or anywhere in csrc/ outside bindings/) includes pybind11.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace convext {

using index_t = std::int64_t;

// Thrown when an allocation of scratch or output memory fails; the bindings
// translate it to Python's MemoryError with the size in the message.
class alloc_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Build a message from pieces: msg("conv2d: stride must be >= 1, got ", s).
template <class... Args>
std::string msg(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}

[[noreturn]] inline void fail(const std::string& what) { throw std::invalid_argument(what); }

// Overflow-checked arithmetic on sizes. `op` names the operation for the message.
// `what` names the quantity being computed for the message.
inline index_t checked_mul(index_t a, index_t b, const char* op, const char* what = "size") {
    index_t r;
    if (__builtin_mul_overflow(a, b, &r))
        fail(msg(op, ": ", what, " overflows 64-bit integers (", a, " * ", b, ")"));
    return r;
}
inline index_t checked_add(index_t a, index_t b, const char* op, const char* what = "size") {
    index_t r;
    if (__builtin_add_overflow(a, b, &r))
        fail(msg(op, ": ", what, " overflows 64-bit integers (", a, " + ", b, ")"));
    return r;
}

// A pair of values for the H and W axes, printed as "(h, w)" in messages.
struct Pair {
    index_t h = 0, w = 0;
};
inline std::ostream& operator<<(std::ostream& os, Pair p) {
    return os << '(' << p.h << ", " << p.w << ')';
}

// Largest number of bytes we will ever try to allocate in one piece where the
// machine's memory is unknown.
constexpr index_t kMaxAllocBytes = index_t(1) << 46;  // 64 TiB

// Bytes of physical memory (kMaxAllocBytes if unknown): no single buffer may
// ask for more. A larger request fails fast with alloc_error (MemoryError)
// instead of being granted by an overcommitting kernel and then OOM-killed.
inline index_t physical_memory_bytes() {
    static const index_t bytes = [] {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
        const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0 && index_t(pages) <= kMaxAllocBytes / index_t(page))
            return index_t(pages) * index_t(page);
#endif
        return kMaxAllocBytes;
    }();
    return bytes;
}

// 64-byte aligned, uninitialised scratch memory owned by a RAII handle.
template <class T>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(index_t n, const char* what = "scratch buffer") { reset(n, what); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer(Buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(o.n_) {}
    ~Buffer() { std::free(p_); }

    void reset(index_t n, const char* what = "scratch buffer") {
        std::free(p_);
        p_ = nullptr;
        n_ = 0;
        if (n <= 0) return;
        index_t bytes = checked_mul(n, index_t(sizeof(T)), what);
        bytes = (bytes + 63) / 64 * 64;
        if (bytes > physical_memory_bytes())
            throw alloc_error(msg("convext: cannot allocate ", bytes, " bytes for ", what,
                                  ": more than this machine's ", physical_memory_bytes(),
                                  " bytes of memory"));
        p_ = static_cast<T*>(std::aligned_alloc(64, static_cast<std::size_t>(bytes)));
        if (!p_) throw alloc_error(msg("convext: cannot allocate ", bytes, " bytes for ", what));
        n_ = n;
    }
    T* data() const { return p_; }
    index_t size() const { return n_; }
    T& operator[](index_t i) const { return p_[i]; }

private:
    T* p_ = nullptr;
    index_t n_ = 0;
};

// ceil(a / b) for a >= 0, b > 0, without forming a + b - 1 (b may be huge).
inline index_t ceil_div(index_t a, index_t b) { return a / b + (a % b != 0); }
inline index_t round_up(index_t a, index_t b) { return ceil_div(a, b) * b; }

// Asks the cache for slice i of `parts` equal slices of [p, p + n) (a hint:
// it reads nothing and never faults). Loops that walk one plane or band
// after another spread the next one's prefetch over their steps: the
// hardware prefetcher, which stops at page boundaries, would fetch its
// first lines late.
template <class T>
inline void prefetch_slice(const T* p, index_t n, index_t i, index_t parts) {
    constexpr index_t kLine = 64 / index_t(sizeof(T));
    const index_t end = (i + 1) * n / parts;
    for (index_t q = i * n / parts / kLine * kLine; q < end; q += kLine) __builtin_prefetch(p + q);
}

// ---- threads ---------------------------------------------------------------
// The number of OpenMP threads convext uses for a call made from the calling
// thread. set_num_threads() sets a process-wide value; a different max-threads
// ICV on the calling thread (threadpoolctl, omp_set_num_threads) takes
// precedence, so threadpoolctl.threadpool_limits also limits convext.
constexpr int kMaxThreads = 4096;
void set_num_threads(int n);
int get_num_threads();
bool openmp_enabled();

}  // namespace convext
