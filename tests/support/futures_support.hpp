// futures_support.hpp: helpers shared by the tests of futures, wait, as_completed,
// completion_queue and the executor contract suite.
//
// Everything here synchronises with latches; nothing sleeps. The one helper that lets time pass
// (elapse_at_least) exists for the tests whose subject is a deadline itself.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <initializer_list>
#include <latch>
#include <muster/muster.hpp>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "unhandled_log.hpp"

namespace muster_test {

using namespace std::chrono_literals;

/// The exception tasks throw in these tests. It carries a code besides the message, so a test
/// can check that result() rethrows this very type (not a copy sliced to std::exception).
class test_error : public std::runtime_error {
public:
    test_error(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

/// Lifetime events of `counted` objects. `constructed` counts every constructor, copies and
/// moves included, so alive() is the number of objects that still exist.
struct lifetime_counts {
    std::atomic<int> constructed{0};
    std::atomic<int> copies{0};
    std::atomic<int> moves{0};
    std::atomic<int> destroyed{0};

    int alive() const { return constructed.load() - destroyed.load(); }
};

/// A value that reports its constructions, copies, moves and destructions. It is also a
/// callable returning its value, so it can stand for a user's task callable.
class counted {
public:
    counted(lifetime_counts& counts, int value) : counts_(&counts), value_(value) {
        counts_->constructed.fetch_add(1);
    }
    counted(const counted& other) : counts_(other.counts_), value_(other.value_) {
        counts_->constructed.fetch_add(1);
        counts_->copies.fetch_add(1);
    }
    counted(counted&& other) noexcept : counts_(other.counts_), value_(other.value_) {
        counts_->constructed.fetch_add(1);
        counts_->moves.fetch_add(1);
    }
    counted& operator=(const counted& other) {
        counts_->copies.fetch_add(1);
        value_ = other.value_;
        return *this;
    }
    counted& operator=(counted&& other) noexcept {
        counts_->moves.fetch_add(1);
        value_ = other.value_;
        return *this;
    }
    ~counted() { counts_->destroyed.fetch_add(1); }

    int value() const noexcept { return value_; }
    int operator()() const { return value_; }

private:
    lifetime_counts* counts_;
    int value_;
};

/// A one-shot gate: wait() blocks until some thread calls open(). Opening twice is harmless.
class gate {
public:
    void open() {
        if (!opened_.exchange(true)) latch_.count_down();
    }
    void wait() const { latch_.wait(); }
    bool is_open() const { return opened_.load(); }

private:
    std::latch latch_{1};
    std::atomic<bool> opened_{false};
};

/// Opens gates when it goes out of scope. Declare the gates before the pool whose tasks wait on
/// them and this guard after it: if a test stops early (a failed ASSERT), the gates open before
/// the pool's destructor waits for those tasks, and the gates outlive the tasks.
class open_on_exit {
public:
    open_on_exit(std::initializer_list<gate*> gates) : gates_(gates) {}
    open_on_exit(const open_on_exit&) = delete;
    open_on_exit& operator=(const open_on_exit&) = delete;
    ~open_on_exit() {
        for (gate* g : gates_) g->open();
    }

private:
    std::vector<gate*> gates_;
};

/// Task bodies that hold a worker: each task() counts down `started` once and then waits for
/// release(). Make one blocker per group of `n` tasks; wait_started() returns once all n run.
class blocker {
public:
    explicit blocker(std::ptrdiff_t n = 1) : started_(n) {}

    /// A callable that reports its start, waits for release(), and returns `value`.
    auto task(int value = 0) {
        return [this, value] {
            started_.count_down();
            release_.wait();
            return value;
        };
    }
    void wait_started() const { started_.wait(); }
    void release() { release_.open(); }

private:
    std::latch started_;
    gate release_;
};

/// A pool of exactly one worker that a blocker task keeps busy. Every task submitted after
/// construction stays pending, in submission order, until release(); the blocker's own future
/// is running meanwhile. The destructor releases the worker and then drains the pool.
class held_pool {
public:
    /// The blocker task returns `blocker_value`.
    explicit held_pool(muster::thread_pool_options options = {}, int blocker_value = -1)
        : pool_(one_worker(std::move(options))) {
        blocker_future_ = pool_.submit(blocker_.task(blocker_value));
        blocker_.wait_started();
    }
    held_pool(const held_pool&) = delete;
    held_pool& operator=(const held_pool&) = delete;
    ~held_pool() { release(); }

    muster::thread_pool& pool() { return pool_; }
    /// The future of the task that holds the worker (running until release()).
    const muster::future<int>& blocker_future() const { return blocker_future_; }

    template <class F, class... Args>
    auto submit(F&& f, Args&&... args) {
        return pool_.submit(std::forward<F>(f), std::forward<Args>(args)...);
    }

    /// Lets the blocker return; the queued tasks then run in order. Idempotent.
    void release() { blocker_.release(); }

private:
    static muster::thread_pool_options one_worker(muster::thread_pool_options options) {
        options.max_workers = 1;
        options.min_workers = 0;
        return options;
    }

    blocker blocker_;  // declared before pool_: it must outlive the worker that waits on it
    muster::thread_pool pool_;
    muster::future<int> blocker_future_;
};

/// A future of `pool` that is already done with `value`.
inline muster::future<int> done_future(muster::thread_pool& pool, int value) {
    auto f = pool.submit([value] { return value; });
    f.wait();
    return f;
}

/// A future of `pool` that is already done with test_error(message, code).
inline muster::future<int> failed_future(muster::thread_pool& pool, const std::string& message,
                                         int code = 0) {
    auto f = pool.submit([message, code]() -> int { throw test_error(message, code); });
    f.wait();
    return f;
}

/// The results of `futures` (blocking on each), sorted.
inline std::vector<int> sorted_results(const std::vector<muster::future<int>>& futures) {
    std::vector<int> out;
    out.reserve(futures.size());
    for (auto const& f : futures) out.push_back(f.result());
    std::sort(out.begin(), out.end());
    return out;
}

/// Lets at least `d` pass since `since` on the steady clock. Only for tests whose subject is a
/// deadline (the time passing is what they test); never use it to wait for another thread.
inline void elapse_at_least(std::chrono::steady_clock::time_point since,
                            std::chrono::steady_clock::duration d) {
    while (std::chrono::steady_clock::now() < since + d) std::this_thread::sleep_for(1ms);
}

}  // namespace muster_test
