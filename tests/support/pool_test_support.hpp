// pool_test_support.hpp: helpers shared by the thread-pool, map, stress and regression tests.
//
// Header-only. Everything here synchronises with latches, atomics and futures; the only waiting
// loop (poll_until) polls a condition with an overall limit and never asserts a duration.
#pragma once

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <muster/muster.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace muster_test {

// ---- build flavour and scaling ---------------------------------------------------------------

#if defined(__SANITIZE_THREAD__)
inline constexpr bool under_tsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool under_tsan = true;
#else
inline constexpr bool under_tsan = false;
#endif
#else
inline constexpr bool under_tsan = false;
#endif

/// The stress knob: the environment variable MUSTER_STRESS_SCALE (a positive integer), 1 when
/// unset or unparsable.
inline std::size_t stress_scale() {
    char const* s = std::getenv("MUSTER_STRESS_SCALE");
    if (s == nullptr || *s == '\0') return 1;
    char* end = nullptr;
    long const v = std::strtol(s, &end, 10);
    return (end != s && v >= 1) ? static_cast<std::size_t>(v) : 1;
}

/// `base` work items scaled by MUSTER_STRESS_SCALE, divided by 10 under ThreadSanitizer (which
/// slows atomics down by an order of magnitude); at least 1.
inline std::size_t stress_count(std::size_t base) {
    std::size_t n = base * stress_scale();
    if constexpr (under_tsan) n /= 10;
    return std::max<std::size_t>(n, 1);
}

// ---- waiting for a condition -----------------------------------------------------------------

/// Polls `pred` every `step` until it holds or `limit` has passed; returns its last value. For
/// conditions no latch can signal (a worker exiting after keep_alive). The limit is a safety net
/// against hangs, never a timing assertion: tests only assert on the returned bool.
template <class Pred>
bool poll_until(Pred&& pred, std::chrono::milliseconds limit = std::chrono::seconds(10),
                std::chrono::milliseconds step = std::chrono::milliseconds(5)) {
    auto const give_up = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= give_up) return pred();
        std::this_thread::sleep_for(step);
    }
}

/// Waits until `pool` has no task queued or running and every live worker is parked.
inline bool wait_all_parked(muster::thread_pool& pool) {
    return poll_until([&] {
        auto const s = pool.stats();
        return s.running == 0 && s.queued == 0 && s.idle == s.workers;
    });
}

/// Whether `pool` refuses outside submissions now (shutdown() or terminate() has begun): probes
/// with a no-op post. A probe accepted before the shutdown simply runs.
inline bool refuses_submissions(muster::thread_pool& pool) {
    try {
        pool.post([] {});
        return false;
    } catch (const muster::shutdown_error&) {
        return true;
    }
}

/// Starts a thread that counts `gate` down as soon as `pool` has begun shutting down, so a test
/// can block a task until a (blocking) shutdown() call is under way. Join it before `pool` dies.
inline std::thread count_down_when_shut_down(muster::thread_pool& pool, std::latch& gate) {
    return std::thread([&pool, &gate] {
        poll_until([&] { return refuses_submissions(pool); }, std::chrono::seconds(60),
                   std::chrono::milliseconds(1));
        gate.count_down();
    });
}

// ---- threads -----------------------------------------------------------------------------------

/// The OS name of the calling thread (Linux keeps 15 characters).
inline std::string current_thread_name() {
    char buf[64] = {};
    if (pthread_getname_np(pthread_self(), buf, sizeof buf) != 0) return {};
    return buf;
}

/// Number of live threads of this process whose OS name starts with `prefix` (Linux: read from
/// /proc/self/task/*/comm). Counting by name ignores threads that sanitizer runtimes or other
/// libraries start on their own.
inline int count_threads_named(const std::string& prefix) {
    int n = 0;
    std::error_code ec;
    for (auto const& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
        std::ifstream in(task.path() / "comm");
        std::string name;
        if (std::getline(in, name) && name.rfind(prefix, 0) == 0) ++n;
    }
    return n;
}

// ---- peak concurrency ------------------------------------------------------------------------

/// Counts how many callers are inside a region at once and remembers the maximum: the proof of
/// parallelism (and of a bound on it) without measuring time.
class concurrency_meter {
public:
    class scope {
    public:
        explicit scope(concurrency_meter& m) : m_(&m) {
            int const now = m_->now_.fetch_add(1, std::memory_order_acq_rel) + 1;
            int peak = m_->peak_.load(std::memory_order_relaxed);
            while (now > peak &&
                   !m_->peak_.compare_exchange_weak(peak, now, std::memory_order_acq_rel,
                                                    std::memory_order_relaxed)) {
            }
        }
        scope(const scope&) = delete;
        scope& operator=(const scope&) = delete;
        ~scope() { m_->now_.fetch_sub(1, std::memory_order_acq_rel); }

    private:
        concurrency_meter* m_;
    };

    [[nodiscard]] scope enter() { return scope(*this); }
    int peak() const { return peak_.load(std::memory_order_acquire); }
    int now() const { return now_.load(std::memory_order_acquire); }

private:
    std::atomic<int> now_{0};
    std::atomic<int> peak_{0};
};

// ---- a barrier that can be called off ----------------------------------------------------------

/// Like std::barrier for one phase, but abort() releases every waiter: a test that detects a
/// stuck pool can unblock its tasks, fail, and still shut the pool down cleanly.
class rendezvous {
public:
    explicit rendezvous(int parties) : parties_(parties) {}

    /// Blocks until `parties` callers arrived or abort(); returns whether all arrived.
    bool arrive_and_wait() {
        std::unique_lock lock(mu_);
        ++arrived_;
        cv_.notify_all();
        cv_.wait(lock, [&] { return arrived_ >= parties_ || aborted_; });
        return arrived_ >= parties_;
    }
    void abort() {
        std::lock_guard lock(mu_);
        aborted_ = true;
        cv_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    int const parties_;
    int arrived_ = 0;
    bool aborted_ = false;
};

// ---- lifetime counting -------------------------------------------------------------------------

/// Counters for every construction, copy, move and destruction of `tracked` objects that share
/// them. alive() is constructions minus destructions; a destructor that runs on an already
/// destroyed object is counted in double_destroyed instead.
struct lifetime_counts {
    std::atomic<long> constructed{0};
    std::atomic<long> copies{0};
    std::atomic<long> moves{0};
    std::atomic<long> copy_assigned{0};
    std::atomic<long> move_assigned{0};
    std::atomic<long> destroyed{0};
    std::atomic<long> double_destroyed{0};

    long created() const { return constructed.load() + copies.load() + moves.load(); }
    long alive() const { return created() - destroyed.load(); }
};

/// A value that reports its life to a lifetime_counts: capture it in a callable to count the
/// callable's copies, moves and destruction, or return it from a task to count the result's.
class tracked {
public:
    tracked(lifetime_counts& c, int value) : c_(&c), value_(value) {
        c_->constructed.fetch_add(1, std::memory_order_relaxed);
    }
    tracked(const tracked& o) : c_(o.c_), value_(o.value_) {
        c_->copies.fetch_add(1, std::memory_order_relaxed);
    }
    tracked(tracked&& o) noexcept : c_(o.c_), value_(o.value_) {
        c_->moves.fetch_add(1, std::memory_order_relaxed);
    }
    tracked& operator=(const tracked& o) {
        c_ = o.c_;
        value_ = o.value_;
        c_->copy_assigned.fetch_add(1, std::memory_order_relaxed);
        return *this;
    }
    tracked& operator=(tracked&& o) noexcept {
        c_ = o.c_;
        value_ = o.value_;
        c_->move_assigned.fetch_add(1, std::memory_order_relaxed);
        return *this;
    }
    ~tracked() {
        // acq_rel on the counters: a test that reads destroyed after joining sees every update.
        if (magic_ != live_magic) {
            c_->double_destroyed.fetch_add(1, std::memory_order_acq_rel);
            return;
        }
        magic_ = dead_magic;
        c_->destroyed.fetch_add(1, std::memory_order_acq_rel);
    }

    int value() const { return value_; }

private:
    static constexpr std::uint32_t live_magic = 0x11FE7A11u;
    static constexpr std::uint32_t dead_magic = 0xDEADDEADu;
    lifetime_counts* c_;
    int value_;
    std::uint32_t magic_ = live_magic;
};

// ---- holding a worker --------------------------------------------------------------------------

/// Occupies one worker of `pool` with a task that blocks until release() (or destruction): the
/// constructor returns once the task is running, so everything submitted afterwards queues
/// behind it on a one-worker pool.
class worker_hold {
public:
    explicit worker_hold(muster::thread_pool& pool)
        : fut_(pool.submit([this] {
              thread_ = std::this_thread::get_id();
              started_.count_down();
              release_.wait();
          })) {
        started_.wait();
    }
    worker_hold(const worker_hold&) = delete;
    worker_hold& operator=(const worker_hold&) = delete;
    ~worker_hold() {
        release();
        fut_.wait();
    }

    void release() {
        if (!released_) {
            released_ = true;
            release_.count_down();
        }
    }
    /// The future of the holding task.
    muster::future<void>& future() { return fut_; }
    /// The worker thread that runs the holding task.
    std::thread::id thread() const { return thread_; }

private:
    std::latch started_{1};
    std::latch release_{1};
    bool released_ = false;
    std::thread::id thread_{};  // written before started_.count_down(), read after wait()
    muster::future<void> fut_;
};

}  // namespace muster_test
