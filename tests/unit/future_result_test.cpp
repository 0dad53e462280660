// future<T>::result(), exception(), wait_for(): reference items 14-21 and weaknesses W9, W10
// and W16; void, move-only and large results; copies and moves of the value.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <latch>
#include <memory>
#include <muster/muster.hpp>
#include <string>
#include <thread>
#include <vector>

#include "futures_support.hpp"

namespace {

using namespace std::chrono_literals;
using muster_test::counted;
using muster_test::held_pool;
using muster_test::lifetime_counts;
using muster_test::test_error;
using steady = std::chrono::steady_clock;

// item 14: a finished value is returned at once whatever the timeout, zero and negative included
TEST(FutureResult, ValueIsReturnedAtOnceWhateverTheTimeout) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([] { return 17; });
    f.wait();
    EXPECT_EQ(f.result(), 17);
    EXPECT_EQ(f.result(0ms), 17);
    EXPECT_EQ(f.result(-5ms), 17);
    EXPECT_EQ(f.result(1h), 17);
    EXPECT_EQ(f.wait_for(0ms), std::future_status::ready);
    EXPECT_EQ(f.wait_for(-1s), std::future_status::ready);
    EXPECT_EQ(f.wait_until(steady::now() - 1s), std::future_status::ready);
}

// item 15: result() rethrows the task's exception unchanged: same dynamic type, same data
TEST(FutureResult, ResultRethrowsTheTasksOwnExceptionType) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([]() -> int { throw test_error("disk on fire", 451); });
    try {
        (void)f.result();
        FAIL() << "result() returned";
    } catch (const test_error& e) {
        EXPECT_STREQ(e.what(), "disk on fire");
        EXPECT_EQ(e.code(), 451);
    }
    // The same through the timed and the rvalue forms.
    EXPECT_THROW((void)f.result(0ms), test_error);
    EXPECT_THROW((void)f.result(1h), test_error);
    EXPECT_THROW((void)muster::future<int>(f).result(), test_error);
}

// item 15: exception() returns the task's exception (here rethrown to inspect it)
TEST(FutureResult, ExceptionReturnsTheStoredException) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([]() -> int { throw test_error("bad input", 22); });
    std::exception_ptr e = f.exception();
    ASSERT_TRUE(e);
    try {
        std::rethrow_exception(e);
    } catch (const test_error& x) {
        EXPECT_STREQ(x.what(), "bad input");
        EXPECT_EQ(x.code(), 22);
    } catch (...) {
        FAIL() << "exception() holds another type";
    }
    EXPECT_TRUE(f.exception(0ms));
    EXPECT_TRUE(f.exception(-1ms));
}

// item 15: exception() returns null on success, with and without timeout
TEST(FutureResult, ExceptionIsNullOnSuccess) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([] { return 1; });
    EXPECT_FALSE(f.exception());
    EXPECT_FALSE(f.exception(0ms));
    EXPECT_FALSE(f.exception(1h));
    auto v = pool.submit([] {});
    EXPECT_FALSE(v.exception());
}

// W9: the outcome is stored once and never replaced: every call sees the same exception object
TEST(FutureResult, TheStoredExceptionObjectIsTheSameOnEveryCall) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([]() -> int { throw test_error("once", 1); });
    auto const first = f.exception();
    for (int i = 0; i < 3; ++i) {
        EXPECT_THROW((void)f.result(), test_error);
    }
    auto const later = f.exception();
    EXPECT_EQ(first, later) << "exception() must return the one stored exception, not a copy";
    muster::future<int> copy = f;
    EXPECT_EQ(copy.exception(), first);
    EXPECT_EQ(muster_test::message_of(later), "once");
}

// items 20, 21, W10: any thrown object is captured, even a non-std::exception one whose value is
// "falsy" (0); the outcome is an error, not "no exception"; the worker survives
TEST(FutureResult, ANonStdFalsyExceptionIsStillAnError) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([]() -> int { throw 0; });
    f.wait();
    EXPECT_TRUE(f.done());
    EXPECT_TRUE(f.exception());
    try {
        (void)f.result();
        FAIL() << "result() returned";
    } catch (int v) {
        EXPECT_EQ(v, 0);
    }
    auto g = pool.submit([]() -> int { throw std::string(); });
    EXPECT_THROW((void)g.result(), std::string);
    // The single worker is still there to run the next task.
    EXPECT_EQ(pool.submit([] { return 3; }).result(), 3);
}

// item 17: result(0) and a negative timeout on a pending task throw timeout_error at once and
// leave the future unchanged
TEST(FutureResult, ZeroAndNegativeTimeoutOnPendingThrowTimeoutAndChangeNothing) {
    held_pool hp;
    auto f = hp.submit([] { return 8; });
    EXPECT_THROW((void)f.result(0ms), muster::timeout_error);
    EXPECT_THROW((void)f.result(-10ms), muster::timeout_error);
    EXPECT_THROW((void)f.result(std::chrono::seconds::min()), muster::timeout_error);
    EXPECT_THROW((void)f.exception(0ms), muster::timeout_error);
    EXPECT_THROW((void)f.exception(-1ms), muster::timeout_error);
    EXPECT_THROW((void)muster::future<int>(f).result(0ms), muster::timeout_error);
    EXPECT_FALSE(f.done());
    EXPECT_FALSE(f.running());
    EXPECT_FALSE(f.cancelled());
    hp.release();
    EXPECT_EQ(f.result(), 8);
}

// item 17: the same on a running task
TEST(FutureResult, ZeroTimeoutOnRunningThrowsTimeout) {
    held_pool hp({}, 4);
    auto const& f = hp.blocker_future();
    EXPECT_THROW((void)f.result(0ms), muster::timeout_error);
    EXPECT_THROW((void)f.exception(0ms), muster::timeout_error);
    EXPECT_TRUE(f.running());
    hp.release();
    EXPECT_EQ(f.result(), 4);
}

// timeout_error is a muster::error and not a cancelled_error (item 13)
TEST(FutureResult, TimeoutErrorIsALibraryError) {
    held_pool hp;
    auto f = hp.submit([] { return 8; });
    EXPECT_THROW((void)f.result(0ms), muster::error);
    try {
        (void)f.result(0ms);
    } catch (const muster::cancelled_error&) {
        FAIL() << "a timeout must not look like a cancellation";
    } catch (const muster::timeout_error&) {
    }
}

// items 19, W16: result(t) waits (at least) t, throws timeout_error, and the task is unchanged and
// still runs afterwards
TEST(FutureResult, TimedResultExpiresWithoutChangingTheFuture) {
    held_pool hp;
    auto f = hp.submit([] { return 12; });
    auto const t0 = steady::now();
    EXPECT_THROW((void)f.result(30ms), muster::timeout_error);
    // W16: a timed wait never gives up before its deadline (spurious wake-ups are re-checked).
    EXPECT_GE(steady::now() - t0, 30ms);
    EXPECT_FALSE(f.done());
    EXPECT_FALSE(f.cancelled());
    EXPECT_THROW((void)f.exception(20ms), muster::timeout_error);
    EXPECT_FALSE(f.done());
    hp.release();
    EXPECT_EQ(f.result(), 12);
}

// item 19: wait_for/wait_until report timeout and ready as a status, without throwing
TEST(FutureResult, WaitForReturnsTimeoutThenReady) {
    held_pool hp;
    auto f = hp.submit([] { return 1; });
    EXPECT_EQ(f.wait_for(0ms), std::future_status::timeout);
    auto const t0 = steady::now();
    EXPECT_EQ(f.wait_for(20ms), std::future_status::timeout);
    EXPECT_GE(steady::now() - t0, 20ms);
    EXPECT_EQ(f.wait_until(steady::now() + 10ms), std::future_status::timeout);
    EXPECT_FALSE(f.done());
    hp.release();
    EXPECT_EQ(f.wait_for(1h), std::future_status::ready);
    EXPECT_EQ(f.wait_until(steady::time_point::max()), std::future_status::ready);
    EXPECT_EQ(f.wait_for(std::chrono::nanoseconds::max()), std::future_status::ready);
}

// item 18: a thread blocked in result(timeout) is released when another thread completes the task
TEST(FutureResult, BlockedTimedResultIsReleasedByCompletion) {
    held_pool hp;
    auto f = hp.submit([] { return 99; });
    std::latch about_to_wait{1};
    auto waiter = std::async(std::launch::async, [&] {
        about_to_wait.count_down();
        return f.result(1h);
    });
    about_to_wait.wait();
    hp.release();
    EXPECT_EQ(waiter.get(), 99);
}

// item 18: many threads blocked in result() are all released by one completion
TEST(FutureResult, AllBlockedWaitersAreReleased) {
    held_pool hp;
    auto f = hp.submit([] { return 5; });
    constexpr int n = 4;
    std::latch ready{n};
    std::vector<std::future<int>> waiters;
    for (int i = 0; i < n; ++i)
        waiters.push_back(std::async(std::launch::async, [&, i] {
            ready.count_down();
            return i % 2 == 0 ? f.result() : f.result(1h);
        }));
    ready.wait();
    hp.release();
    for (auto& w : waiters) EXPECT_EQ(w.get(), 5);
}

// item 16: a timed result() on a cancelled task throws cancelled_error, not timeout_error
TEST(FutureResult, TimedResultOnCancelledThrowsCancelled) {
    held_pool hp;
    auto f = hp.submit([] { return 1; });
    ASSERT_TRUE(f.cancel());
    EXPECT_THROW((void)f.result(0ms), muster::cancelled_error);
    EXPECT_THROW((void)f.result(-1ms), muster::cancelled_error);
    EXPECT_THROW((void)f.exception(0ms), muster::cancelled_error);
    EXPECT_EQ(f.wait_for(0ms), std::future_status::ready);
}

// items 14, 15: void tasks
TEST(FutureResult, VoidTaskResultAndException) {
    muster::thread_pool pool({.max_workers = 1});
    std::atomic<bool> ran{false};
    muster::future<void> ok = pool.submit([&] { ran = true; });
    static_assert(std::is_same_v<decltype(ok.result()), void>);
    ok.result();
    EXPECT_TRUE(ran.load());
    EXPECT_FALSE(ok.exception());
    ok.result(0ms);

    muster::future<void> bad = pool.submit([] { throw test_error("void failed", 3); });
    try {
        bad.result();
        FAIL() << "result() returned";
    } catch (const test_error& e) {
        EXPECT_EQ(e.code(), 3);
    }
    EXPECT_TRUE(bad.exception());
    EXPECT_THROW(std::move(bad).result(), test_error);
}

// Move-only results: result() && moves the value out; result() const& gives a reference to it.
TEST(FutureResult, MoveOnlyResultIsMovedOut) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([] { return std::make_unique<int>(42); });
    static_assert(std::is_same_v<decltype(f), muster::future<std::unique_ptr<int>>>);
    auto const& ref = f.result();
    ASSERT_TRUE(ref);
    EXPECT_EQ(*ref, 42);
    muster::future<std::unique_ptr<int>> other = f;
    std::unique_ptr<int> p = std::move(f).result();
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, 42);
    // Documented: other handles to the task now see the moved-from value.
    EXPECT_TRUE(other.result() == nullptr);
}

// A 1 MiB result, in a unique_ptr and in a vector, arrives intact.
TEST(FutureResult, LargeResultsArriveIntact) {
    constexpr std::size_t size = std::size_t{1} << 20;
    muster::thread_pool pool({.max_workers = 2});
    auto a = pool.submit([] {
        auto p = std::make_unique<std::array<std::uint8_t, size>>();
        for (std::size_t i = 0; i < size; ++i) (*p)[i] = static_cast<std::uint8_t>(i * 7);
        return p;
    });
    auto v = pool.submit([] {
        std::vector<std::uint32_t> out(size / 4);
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint32_t>(i);
        return out;
    });
    auto arr = std::move(a).result();
    ASSERT_TRUE(arr);
    bool intact = true;
    for (std::size_t i = 0; i < size; ++i)
        intact = intact && (*arr)[i] == static_cast<std::uint8_t>(i * 7);
    EXPECT_TRUE(intact);
    std::vector<std::uint32_t> const& vec = v.result();
    ASSERT_EQ(vec.size(), size / 4);
    EXPECT_EQ(vec.front(), 0u);
    EXPECT_EQ(vec.back(), size / 4 - 1);
    std::vector<std::uint32_t> moved = std::move(v).result();
    EXPECT_EQ(moved.size(), size / 4);
}

// The value is built in the task block and never copied: result() const& hands out a reference
// and result() && moves. The callable passed as an rvalue is moved, never copied, and its
// captures are destroyed before the future reports done.
TEST(FutureResult, ValuesAndCallablesAreMovedNotCopied) {
    lifetime_counts values;
    lifetime_counts callables;
    {
        muster::thread_pool pool({.max_workers = 1});
        auto f = pool.submit(
            [c = counted(callables, 1), &values] { return counted(values, c.value() + 1); });
        EXPECT_EQ(callables.copies.load(), 0);
        counted const& ref = f.result();
        EXPECT_EQ(ref.value(), 2);
        EXPECT_EQ(values.copies.load(), 0);
        EXPECT_EQ(callables.alive(), 0) << "the task's captures must be gone once it is done";
        counted const& again = f.result();
        EXPECT_EQ(&ref, &again) << "result() const& must refer to the one stored value";
        counted taken = std::move(f).result();
        EXPECT_EQ(taken.value(), 2);
        EXPECT_EQ(values.copies.load(), 0);
        EXPECT_EQ(callables.copies.load(), 0);
    }
    EXPECT_EQ(values.alive(), 0);
    EXPECT_EQ(callables.alive(), 0);
}

// Arguments are decay-copied into the task (as std::thread does) and destroyed with it; the
// stored value is destroyed with the last handle to the task.
TEST(FutureResult, ArgumentsAndValueAreDestroyedWithTheTask) {
    lifetime_counts args;
    lifetime_counts values;
    {
        muster::thread_pool pool({.max_workers = 1});
        counted arg(args, 3);
        auto f = pool.submit([&values](const counted& a) { return counted(values, a.value() * 2); },
                             arg);
        EXPECT_EQ(f.result().value(), 6);
        EXPECT_EQ(args.alive(), 1)
            << "only the caller's own argument may remain once the task is done";
        pool.shutdown();  // the worker has dropped its reference to the task
        EXPECT_EQ(values.alive(), 1) << "the value lives as long as a future refers to it";
        f = muster::future<counted>();
        EXPECT_EQ(values.alive(), 0) << "the last handle going away destroys the value";
    }
    EXPECT_EQ(args.alive(), 0);
}

// item 18: result() called inside a task of a one-worker pool, on a task queued to the same pool
// behind it, completes: the waiting worker runs the awaited task.
TEST(FutureResult, ResultInsideAWorkerRunsTheAwaitedTask) {
    muster::thread_pool pool({.max_workers = 1});
    auto outer = pool.submit([&pool] {
        auto inner = pool.submit([] { return 20; });
        auto timed = pool.submit([] { return 1; });
        return inner.result() + timed.result(1h);
    });
    EXPECT_EQ(outer.result(), 21);
}

// items 18, W16: timeouts too large to add to the clock saturate; they neither overflow into an
// expired deadline nor stop a blocked waiter from being released
TEST(FutureResult, HugeTimeoutsDoNotOverflow) {
    held_pool hp;
    auto f = hp.submit([] { return 77; });
    std::latch about_to_wait{1};
    auto hours = std::async(std::launch::async, [&] {
        about_to_wait.count_down();
        return f.result(std::chrono::hours::max());
    });
    auto nanos = std::async(std::launch::async, [&] {
        return f.wait_for(std::chrono::nanoseconds::max()) == std::future_status::ready;
    });
    about_to_wait.wait();
    EXPECT_THROW((void)f.result(0ms), muster::timeout_error);
    hp.release();
    EXPECT_EQ(hours.get(), 77);
    EXPECT_TRUE(nanos.get());
}

// Futures may outlive their pool: the outcome stays available after the pool is destroyed.
TEST(FutureResult, FuturesOutliveThePool) {
    muster::future<int> ok;
    muster::future<int> bad;
    muster::future<void> v;
    {
        muster::thread_pool pool({.max_workers = 2});
        ok = pool.submit([] { return 5; });
        bad = pool.submit([]() -> int { throw test_error("after the pool", 9); });
        v = pool.submit([] {});
    }  // the destructor ran every task
    EXPECT_TRUE(ok.done());
    EXPECT_EQ(ok.result(0ms), 5);
    EXPECT_THROW((void)bad.result(), test_error);
    EXPECT_FALSE(v.exception());
    EXPECT_FALSE(ok.cancel());
}

// item 17: a zero-timeout poll made on a worker answers at once: it throws timeout_error for a
// task still queued, and neither runs that task nor other queued tasks to get a result (a poll
// must not turn into an unbounded amount of work; the task is unchanged by the poll)
TEST(FutureResult, ZeroTimeoutPollOnAWorkerDoesNotRunQueuedTasks) {
    muster::thread_pool pool({.max_workers = 1});
    struct seen {
        bool timed_out = false;
        bool status_timeout = false;
        bool pending_after_poll = false;
        bool other_ran_during_poll = false;
    };
    std::atomic<bool> other_ran{false};
    auto outer = pool.submit([&] {
        seen s;
        auto p = pool.submit([] { return 1; });
        auto other = pool.submit([&] {
            other_ran = true;
            return 2;
        });
        try {
            (void)p.result(0ms);
        } catch (const muster::timeout_error&) {
            s.timed_out = true;
        }
        s.status_timeout = p.wait_for(0ms) == std::future_status::timeout;
        s.pending_after_poll = !p.done() && !p.running();
        s.other_ran_during_poll = other_ran.load();
        return s;
    });
    auto const s = outer.result();
    EXPECT_TRUE(s.timed_out) << "result(0ms) on a queued task must throw timeout_error";
    EXPECT_TRUE(s.status_timeout) << "wait_for(0ms) on a queued task must report timeout";
    EXPECT_TRUE(s.pending_after_poll) << "the poll ran the awaited task";
    EXPECT_FALSE(s.other_ran_during_poll) << "the poll ran another queued task";
}

}  // namespace
