// future<T> states and cancellation: reference items 1-5, 7 and 13, and weakness W1 (a
// cancelled future is done for every waiter at once).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <latch>
#include <muster/muster.hpp>
#include <stop_token>
#include <thread>
#include <type_traits>

#include "futures_support.hpp"

namespace {

using namespace std::chrono_literals;
using muster_test::blocker;
using muster_test::gate;
using muster_test::held_pool;
using muster_test::lifetime_counts;
using muster_test::test_error;

// item 1
TEST(FutureState, PendingFutureIsNotRunningDoneOrCancelled) {
    held_pool hp;
    auto f = hp.submit([] { return 1; });
    EXPECT_TRUE(f.valid());
    EXPECT_FALSE(f.running());
    EXPECT_FALSE(f.done());
    EXPECT_FALSE(f.cancelled());
    EXPECT_EQ(f.wait_for(0ms), std::future_status::timeout);
}

// item 2 (RUNNING -> running() only)
TEST(FutureState, RunningWhileTheTaskIsInsideALatch) {
    blocker b;
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit(b.task(7));
    b.wait_started();
    EXPECT_TRUE(f.running());
    EXPECT_FALSE(f.done());
    EXPECT_FALSE(f.cancelled());
    b.release();
    EXPECT_EQ(f.result(), 7);
    EXPECT_FALSE(f.running());
    EXPECT_TRUE(f.done());
}

// item 2 (FINISHED with a value -> done() only)
TEST(FutureState, FinishedWithValueIsDoneOnly) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([] { return 3; });
    f.wait();
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.running());
    EXPECT_FALSE(f.cancelled());
    EXPECT_EQ(f.wait_for(0ms), std::future_status::ready);
}

// item 2 (FINISHED with an exception -> done() only)
TEST(FutureState, FinishedWithExceptionIsDoneOnly) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([]() -> int { throw test_error("failed", 1); });
    f.wait();
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.running());
    EXPECT_FALSE(f.cancelled());
}

// items 2, 3
TEST(FutureState, CancelPendingReturnsTrueAndIsDoneAtOnce) {
    held_pool hp;
    auto f = hp.submit([] { return 1; });
    EXPECT_TRUE(f.cancel());
    EXPECT_TRUE(f.cancelled());
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.running());
    EXPECT_EQ(f.wait_for(0ms), std::future_status::ready);
}

// items 3, 16
TEST(FutureState, CancelledResultThrowsCancelledErrorAtOnce) {
    held_pool hp;
    auto f = hp.submit([] { return 1; });
    ASSERT_TRUE(f.cancel());
    // All of these must answer while the worker is still held, i.e. without the task running.
    EXPECT_THROW(f.result(), muster::cancelled_error);
    EXPECT_THROW(f.result(0ms), muster::cancelled_error);
    EXPECT_THROW(f.result(1h), muster::cancelled_error);
    EXPECT_THROW(f.exception(), muster::cancelled_error);
    EXPECT_THROW(f.exception(0ms), muster::cancelled_error);
    EXPECT_THROW(std::move(f).result(), muster::cancelled_error);
}

// item 13: cancelled_error is a muster::error, which a caller can catch as std::runtime_error
TEST(FutureState, CancelledErrorIsCaughtAsTheLibraryBase) {
    held_pool hp;
    auto f = hp.submit([] { return 1; });
    ASSERT_TRUE(f.cancel());
    EXPECT_THROW(f.result(), muster::error);
    EXPECT_THROW(f.result(), std::runtime_error);
}

// item 13
TEST(FutureState, ErrorTypesDeriveFromTheLibraryBase) {
    static_assert(std::is_base_of_v<std::runtime_error, muster::error>);
    static_assert(std::is_base_of_v<muster::error, muster::cancelled_error>);
    static_assert(std::is_base_of_v<muster::error, muster::timeout_error>);
    static_assert(std::is_base_of_v<muster::error, muster::shutdown_error>);
    static_assert(std::is_base_of_v<muster::error, muster::broken_pool>);
    static_assert(std::is_base_of_v<muster::error, muster::invalid_argument>);
    static_assert(std::is_base_of_v<muster::error, muster::queue_full_error>);
    static_assert(!std::is_base_of_v<muster::cancelled_error, muster::timeout_error>);
    static_assert(!std::is_base_of_v<muster::timeout_error, muster::cancelled_error>);
    SUCCEED();
}

// items 3, 16, 18: cancel() wakes a thread blocked in result()
TEST(FutureState, CancelWakesAThreadBlockedInResult) {
    held_pool hp;
    auto f = hp.submit([] { return 1; });
    std::latch about_to_wait{1};
    auto waiter = std::async(std::launch::async, [&] {
        about_to_wait.count_down();
        try {
            (void)f.result();
            return 0;
        } catch (const muster::cancelled_error&) {
            return 1;
        }
    });
    about_to_wait.wait();
    // Gives the waiter a chance to block first; the outcome must be the same either way.
    std::this_thread::sleep_for(5ms);
    ASSERT_TRUE(f.cancel());
    EXPECT_EQ(waiter.get(), 1);
}

// items 3, 7: the cancelled task never runs and its callable is destroyed by cancel()
TEST(FutureState, CancelledTaskNeverRunsAndItsCallableIsDestroyedAtOnce) {
    lifetime_counts counts;
    std::atomic<bool> ran{false};
    {
        held_pool hp;
        auto f = hp.submit([c = muster_test::counted(counts, 5), &ran] {
            ran = true;
            return c.value();
        });
        EXPECT_GE(counts.alive(), 1);
        ASSERT_TRUE(f.cancel());
        EXPECT_EQ(counts.alive(), 0)
            << "cancel() must destroy the captures of a task that never runs";
        hp.release();
        hp.pool().shutdown();  // the worker reaches the cancelled task and must skip it
    }
    EXPECT_FALSE(ran.load());
    EXPECT_EQ(counts.alive(), 0);
}

// item 4: cancel on a running task returns false and changes nothing
TEST(FutureState, CancelRunningReturnsFalseAndTheTaskFinishes) {
    held_pool hp({}, 42);
    auto const& f = hp.blocker_future();
    ASSERT_TRUE(f.running());
    muster::future<int> copy = f;
    EXPECT_FALSE(copy.cancel());
    EXPECT_TRUE(copy.running());
    EXPECT_FALSE(copy.cancelled());
    EXPECT_FALSE(copy.done());
    hp.release();
    EXPECT_EQ(copy.result(), 42);
    EXPECT_FALSE(copy.cancelled());
}

// item 4: cancel on a finished task (value or exception) returns false and changes nothing
TEST(FutureState, CancelFinishedReturnsFalseAndKeepsTheOutcome) {
    muster::thread_pool pool({.max_workers = 1});
    auto ok = pool.submit([] { return 9; });
    auto bad = pool.submit([]() -> int { throw test_error("bad", 2); });
    ok.wait();
    bad.wait();
    EXPECT_FALSE(ok.cancel());
    EXPECT_FALSE(bad.cancel());
    EXPECT_FALSE(ok.cancelled());
    EXPECT_FALSE(bad.cancelled());
    EXPECT_EQ(ok.result(), 9);
    EXPECT_THROW(bad.result(), test_error);
    EXPECT_FALSE(ok.cancel());  // still false the second time
}

// item 5: cancel twice returns true both times, and the callbacks run once
TEST(FutureState, CancelTwiceReturnsTrueAndCallbacksRunOnce) {
    held_pool hp;
    auto f = hp.submit([] { return 1; });
    std::atomic<int> calls{0};
    f.add_done_callback([&](const muster::future<int>&) { calls.fetch_add(1); });
    EXPECT_TRUE(f.cancel());
    EXPECT_EQ(calls.load(), 1);
    EXPECT_TRUE(f.cancel());
    muster::future<int> copy = f;
    EXPECT_TRUE(copy.cancel());
    EXPECT_TRUE(f.cancelled());
    hp.release();
    hp.pool().shutdown();
    EXPECT_EQ(calls.load(), 1);
}

// items 3, 22: cancellation by several threads at once: exactly one cancel() wins the state
// change, all of them return true, and the callback runs once
TEST(FutureState, ConcurrentCancelsAllReturnTrueCallbackRunsOnce) {
    held_pool hp;
    auto f = hp.submit([] { return 1; });
    std::atomic<int> calls{0};
    f.add_done_callback([&](const muster::future<int>&) { calls.fetch_add(1); });
    constexpr int n = 4;
    std::latch go{n};
    std::vector<std::future<bool>> results;
    for (int i = 0; i < n; ++i)
        results.push_back(std::async(std::launch::async, [&, copy = f]() mutable {
            go.arrive_and_wait();
            return copy.cancel();
        }));
    for (auto& r : results) EXPECT_TRUE(r.get());
    EXPECT_EQ(calls.load(), 1);
}

// Copies of a future share the task (Python's futures are shared objects).
TEST(FutureState, CopiesShareTheTask) {
    held_pool hp;
    auto f = hp.submit([] { return 5; });
    muster::future<int> g = f;
    muster::future<int> h;
    h = g;
    EXPECT_TRUE(h.valid());
    EXPECT_TRUE(h.cancel());
    EXPECT_TRUE(f.cancelled());
    EXPECT_TRUE(g.cancelled());

    muster::thread_pool pool({.max_workers = 1});
    auto v = pool.submit([] { return 6; });
    auto w = v;
    EXPECT_EQ(v.result(), 6);
    EXPECT_EQ(w.result(), 6);
}

// A moved-from future has no task: valid() is false and its members throw muster::error; the
// target of the move owns the task.
TEST(FutureState, MovedFromFutureHasNoTask) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([] { return 5; });
    muster::future<int> g = std::move(f);
    EXPECT_FALSE(f.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_THROW(f.result(), muster::error);
    EXPECT_TRUE(g.valid());
    EXPECT_EQ(g.result(), 5);
}

// A default-constructed future has no task; every member but the special ones throws
// muster::error.
TEST(FutureState, DefaultConstructedFutureThrowsError) {
    muster::future<int> f;
    EXPECT_FALSE(f.valid());
    EXPECT_THROW((void)f.result(), muster::error);
    EXPECT_THROW((void)f.result(0ms), muster::error);
    EXPECT_THROW((void)std::move(f).result(), muster::error);
    EXPECT_THROW((void)f.exception(), muster::error);
    EXPECT_THROW((void)f.done(), muster::error);
    EXPECT_THROW((void)f.running(), muster::error);
    EXPECT_THROW((void)f.cancelled(), muster::error);
    EXPECT_THROW((void)f.cancel(), muster::error);
    EXPECT_THROW(f.wait(), muster::error);
    EXPECT_THROW((void)f.wait_for(0ms), muster::error);
    EXPECT_THROW(f.add_done_callback([](const muster::future<int>&) {}), muster::error);

    muster::future<void> v;
    EXPECT_THROW(v.result(), muster::error);
}

// request_stop() on a pending task cancels it (item 3); on a running task that takes a
// std::stop_token it requests stop instead, and on one that does not it returns false (item 4).
TEST(FutureState, RequestStopCancelsPendingAndStopsRunningStoppableTask) {
    muster::thread_pool pool({.max_workers = 1});
    std::latch started{1};
    auto running = pool.submit([&](std::stop_token st) {
        started.count_down();
        while (!st.stop_requested()) std::this_thread::yield();
        return 11;
    });
    started.wait();
    auto pending = pool.submit([] { return 1; });
    EXPECT_TRUE(pending.request_stop());
    EXPECT_TRUE(pending.cancelled());
    EXPECT_TRUE(running.request_stop());
    EXPECT_EQ(running.result(), 11);
    EXPECT_FALSE(running.request_stop()) << "a finished task can be neither cancelled nor stopped";

    held_pool hp;
    muster::future<int> plain = hp.blocker_future();
    EXPECT_FALSE(plain.request_stop()) << "the running task takes no stop_token";
    EXPECT_TRUE(plain.running());
}

}  // namespace
