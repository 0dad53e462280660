#include "muster/detail/parking.hpp"

#include <cerrno>
#include <climits>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#else
#include <condition_variable>
#include <mutex>
#endif

namespace muster::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "parking needs std::atomic<uint32_t> to be a plain 32-bit word");

#if defined(__linux__)

namespace {
auto* word_address(const std::atomic<std::uint32_t>& word) noexcept {
    return reinterpret_cast<std::uint32_t*>(const_cast<std::atomic<std::uint32_t>*>(&word));
}
}  // namespace

bool park(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
          deadline_t deadline) noexcept {
    if (!deadline) {
        syscall(SYS_futex, word_address(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
        return true;
    }
    if (clock::now() >= *deadline) return false;
    // steady_clock is CLOCK_MONOTONIC on Linux; FUTEX_WAIT_BITSET takes an absolute time on it,
    // so a wake-up that must re-park keeps the one deadline (no drift across retries).
    auto const since = deadline->time_since_epoch();
    auto const secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(secs.count());
    ts.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs).count());
    long const r = syscall(SYS_futex, word_address(word), FUTEX_WAIT_BITSET_PRIVATE, expected, &ts,
                           nullptr, FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && errno == ETIMEDOUT) return false;
    return true;
}

void unpark_one(const std::atomic<std::uint32_t>& word) noexcept {
    syscall(SYS_futex, word_address(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void unpark_all(const std::atomic<std::uint32_t>& word) noexcept {
    syscall(SYS_futex, word_address(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

#else

// Portable fallback: a fixed table of mutex/condition-variable pairs hashed by address. A waker
// takes the bucket's lock before notifying, and a waiter checks the word under the same lock,
// so a wake between the check and the wait cannot be lost.
namespace {
struct bucket {
    std::mutex mu;
    std::condition_variable cv;
};
bucket& bucket_for(const void* p) noexcept {
    static bucket table[64];
    return table[(reinterpret_cast<std::uintptr_t>(p) >> 4) % 64];
}
}  // namespace

bool park(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
          deadline_t deadline) noexcept {
    auto& b = bucket_for(&word);
    std::unique_lock lock(b.mu);
    if (word.load(std::memory_order_acquire) != expected) return true;
    if (!deadline) {
        b.cv.wait(lock);
        return true;
    }
    return b.cv.wait_until(lock, *deadline) == std::cv_status::no_timeout;
}

void unpark_one(const std::atomic<std::uint32_t>& word) noexcept { unpark_all(word); }

void unpark_all(const std::atomic<std::uint32_t>& word) noexcept {
    auto& b = bucket_for(&word);
    std::lock_guard lock(b.mu);
    b.cv.notify_all();
}

#endif

}  // namespace muster::detail
