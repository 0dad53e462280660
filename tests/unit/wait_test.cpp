// muster::wait: reference items 37-47 and weaknesses W1 (a cancelled future is done for wait at
// once; item 47 is a deliberate deviation) and W14 (return_when is validated eagerly; item 46's
// laziness is a deliberate deviation).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <list>
#include <muster/muster.hpp>
#include <ranges>
#include <span>
#include <thread>
#include <vector>

#include "futures_support.hpp"

namespace {

using namespace std::chrono_literals;
using muster::return_when;
using muster_test::gate;
using muster_test::held_pool;
using muster_test::sorted_results;
using muster_test::test_error;
using futures = std::vector<muster::future<int>>;

/// Starts muster::wait(fs, how) on another thread; returns once that thread is about to call it.
auto start_wait(futures fs, return_when how = return_when::all_completed) {
    std::latch about_to_wait{1};
    auto waiter = std::async(std::launch::async, [&about_to_wait, fs = std::move(fs), how] {
        about_to_wait.count_down();  // the last use of the latch on this thread
        return muster::wait(fs, how);
    });
    about_to_wait.wait();
    return waiter;
}

// item 45: an empty input returns two empty sets at once, for every return_when
TEST(Wait, EmptyInputReturnsEmptySets) {
    futures none;
    for (auto when :
         {return_when::all_completed, return_when::first_completed, return_when::first_exception}) {
        auto r = muster::wait(none, when);
        EXPECT_TRUE(r.done.empty());
        EXPECT_TRUE(r.not_done.empty());
        auto t = muster::wait(none, when, 0ms);
        EXPECT_TRUE(t.done.empty());
        EXPECT_TRUE(t.not_done.empty());
    }
}

// item 37: duplicates are removed
TEST(Wait, DuplicatesAreRemoved) {
    muster::thread_pool pool({.max_workers = 1});
    auto a = muster_test::done_future(pool, 1);
    auto b = muster_test::done_future(pool, 2);
    auto r = muster::wait(futures{a, b, a, a, muster::future<int>(b)});
    EXPECT_TRUE(r.not_done.empty());
    EXPECT_EQ(sorted_results(r.done), (std::vector<int>{1, 2}));
}

// items 37, 44: duplicates of a pending future are removed too, and land once in not_done
TEST(Wait, DuplicatesOfAPendingFutureAppearOnceInNotDone) {
    muster::thread_pool other({.max_workers = 1});
    auto d = muster_test::done_future(other, 1);
    held_pool hp;
    auto p = hp.submit([] { return 2; });
    auto r = muster::wait(futures{p, d, p, p}, return_when::all_completed, 20ms);
    ASSERT_EQ(r.done.size(), 1u);
    ASSERT_EQ(r.not_done.size(), 1u);
    EXPECT_EQ(r.done[0].result(), 1);
    hp.release();
    EXPECT_EQ(r.not_done[0].result(), 2);
}

// item 38: all_completed (the default) returns once every future is done
TEST(Wait, AllCompletedWaitsForEveryFuture) {
    held_pool hp;
    futures fs;
    for (int i = 0; i < 5; ++i) fs.push_back(hp.submit([i] { return i; }));
    auto waiter = start_wait(fs);
    hp.release();
    auto r = waiter.get();
    EXPECT_TRUE(r.not_done.empty());
    ASSERT_EQ(r.done.size(), 5u);
    for (auto const& f : r.done) EXPECT_TRUE(f.done());
    EXPECT_EQ(sorted_results(r.done), (std::vector<int>{0, 1, 2, 3, 4}));
}

// item 38: no lost completion under heavy concurrent completion
TEST(Wait, AllCompletedUnderConcurrentCompletion) {
    muster::thread_pool pool({.max_workers = 2});
    for (int round = 0; round < 5; ++round) {
        futures fs;
        for (int i = 0; i < 400; ++i) fs.push_back(pool.submit([i] { return i; }));
        auto r = muster::wait(fs, return_when::all_completed);
        ASSERT_EQ(r.done.size(), 400u);
        ASSERT_TRUE(r.not_done.empty());
        for (auto const& f : r.done) ASSERT_TRUE(f.done());
    }
}

// item 39: first_completed returns as soon as one future completes
TEST(Wait, FirstCompletedReturnsWhenOneCompletes) {
    gate second;
    held_pool hp({}, 100);
    muster_test::open_on_exit opener{&second};
    auto b = hp.blocker_future();
    auto p = hp.submit([&] {
        second.wait();
        return 200;
    });
    auto waiter = start_wait(futures{b, p}, return_when::first_completed);
    hp.release();  // b completes; p then runs and blocks on `second`
    auto r = waiter.get();
    ASSERT_EQ(r.done.size(), 1u);
    ASSERT_EQ(r.not_done.size(), 1u);
    EXPECT_EQ(r.done[0].result(), 100);
    EXPECT_FALSE(r.not_done[0].done());
    second.open();
    EXPECT_EQ(r.not_done[0].result(), 200);
}

// items 39, 40, 45: with some futures already complete, first_completed returns at once with all
// of them in done
TEST(Wait, FirstCompletedWithSomeAlreadyDoneReturnsAllOfThem) {
    muster::thread_pool other({.max_workers = 1});
    auto d1 = muster_test::done_future(other, 1);
    auto d2 = muster_test::failed_future(other, "failed");
    held_pool hp;
    auto p1 = hp.submit([] { return 3; });
    auto p2 = hp.submit([] { return 4; });
    auto r = muster::wait(futures{p1, d1, p2, d2}, return_when::first_completed);
    EXPECT_EQ(r.done.size(), 2u);
    EXPECT_EQ(r.not_done.size(), 2u);
    for (auto const& f : r.done) EXPECT_TRUE(f.done());
    for (auto const& f : r.not_done) EXPECT_FALSE(f.done());
    hp.release();
    EXPECT_EQ(sorted_results(r.not_done), (std::vector<int>{3, 4}));
}

// item 41: first_exception returns when a future fails; done also holds the other complete ones
TEST(Wait, FirstExceptionReturnsWhenOneFails) {
    gate fail_now;
    muster::thread_pool other({.max_workers = 1});
    muster::thread_pool failing({.max_workers = 1});
    held_pool hp;
    muster_test::open_on_exit opener{&fail_now};
    auto ok = muster_test::done_future(other, 1);
    auto pending = hp.submit([] { return 2; });
    auto bad = failing.submit([&]() -> int {
        fail_now.wait();
        throw test_error("first failure", 7);
    });
    auto waiter = start_wait(futures{ok, pending, bad}, return_when::first_exception);
    fail_now.open();
    auto r = waiter.get();  // the held worker keeps `pending` from finishing
    ASSERT_EQ(r.done.size(), 2u) << "done must hold the failure and the earlier success";
    ASSERT_EQ(r.not_done.size(), 1u);
    int failures = 0;
    int successes = 0;
    for (auto const& f : r.done) {
        if (f.exception())
            ++failures;
        else if (f.result() == 1)
            ++successes;
    }
    EXPECT_EQ(failures, 1);
    EXPECT_EQ(successes, 1);
    EXPECT_FALSE(r.not_done[0].done());
    hp.release();
    EXPECT_EQ(r.not_done[0].result(), 2);
}

// item 42: first_exception returns at once if an input already failed
TEST(Wait, FirstExceptionWithAnAlreadyFailedInputReturnsAtOnce) {
    muster::thread_pool other({.max_workers = 1});
    auto bad = muster_test::failed_future(other, "already");
    auto ok = muster_test::done_future(other, 1);
    held_pool hp;
    auto p = hp.submit([] { return 2; });
    auto r = muster::wait(futures{p, ok, bad}, return_when::first_exception);
    EXPECT_EQ(r.done.size(), 2u);
    ASSERT_EQ(r.not_done.size(), 1u);
    EXPECT_FALSE(r.not_done[0].done());
}

// item 43: with no failing future, first_exception behaves like all_completed
TEST(Wait, FirstExceptionWithoutFailuresBehavesLikeAllCompleted) {
    gate last;
    held_pool hp;
    muster_test::open_on_exit opener{&last};
    auto a = hp.submit([] { return 1; });
    auto b = hp.submit([&] {
        last.wait();
        return 2;
    });
    auto waiter = start_wait(futures{a, b}, return_when::first_exception);
    hp.release();
    // Gives a wrong implementation the chance to return after `a` alone; `b` cannot finish yet.
    EXPECT_EQ(waiter.wait_for(20ms), std::future_status::timeout);
    last.open();
    auto r = waiter.get();
    EXPECT_TRUE(r.not_done.empty());
    EXPECT_EQ(sorted_results(r.done), (std::vector<int>{1, 2}));
}

// item 43, W1 (deliberate deviation from item 47): a cancellation is not an exception for
// first_exception; the cancelled future is in done and the wait goes on for the others
TEST(Wait, CancellationIsNotAnException) {
    gate last;
    held_pool hp;
    muster_test::open_on_exit opener{&last};
    auto cancelled = hp.submit([] { return 1; });
    auto b = hp.submit([&] {
        last.wait();
        return 2;
    });
    ASSERT_TRUE(cancelled.cancel());
    auto waiter = start_wait(futures{cancelled, b}, return_when::first_exception);
    hp.release();
    // Gives a wrong implementation the chance to return on the cancellation.
    EXPECT_EQ(waiter.wait_for(20ms), std::future_status::timeout);
    last.open();
    auto r = waiter.get();
    EXPECT_TRUE(r.not_done.empty());
    ASSERT_EQ(r.done.size(), 2u);
    int cancelled_count = 0;
    for (auto const& f : r.done) cancelled_count += f.cancelled() ? 1 : 0;
    EXPECT_EQ(cancelled_count, 1);
}

// item 44: when the timeout expires, wait returns normally with the right split, and the futures
// are not changed
TEST(Wait, TimeoutReturnsNormallyWithTheRightSplit) {
    muster::thread_pool other({.max_workers = 1});
    auto d = muster_test::done_future(other, 1);
    held_pool hp({}, 5);
    auto b = hp.blocker_future();
    auto p = hp.submit([] { return 6; });
    for (auto when :
         {return_when::all_completed, return_when::first_exception, return_when::first_completed}) {
        futures in{b, d, p};
        muster::wait_result<int> r;
        EXPECT_NO_THROW(r = muster::wait(in, when, 20ms));
        if (when == return_when::first_completed) {
            // d is already done, so first_completed is satisfied at once.
            ASSERT_EQ(r.done.size(), 1u);
        } else {
            ASSERT_EQ(r.done.size(), 1u);
            ASSERT_EQ(r.not_done.size(), 2u);
        }
        EXPECT_EQ(r.done[0].result(), 1);
    }
    auto r = muster::wait(futures{b, p}, return_when::all_completed, 0ms);
    EXPECT_TRUE(r.done.empty());
    EXPECT_EQ(r.not_done.size(), 2u);
    EXPECT_TRUE(b.running());
    EXPECT_FALSE(p.done());
    EXPECT_FALSE(p.cancelled());
    hp.release();
    EXPECT_EQ(b.result(), 5);
    EXPECT_EQ(p.result(), 6);
}

// item 45: with every input already complete, wait returns at once for any return_when
TEST(Wait, AllDoneReturnsAtOnceForAnyReturnWhen) {
    muster::thread_pool pool({.max_workers = 1});
    futures fs{muster_test::done_future(pool, 1), muster_test::failed_future(pool, "f"),
               muster_test::done_future(pool, 3)};
    held_pool hp;
    auto c = hp.submit([] { return 4; });
    ASSERT_TRUE(c.cancel());
    fs.push_back(c);
    for (auto when :
         {return_when::all_completed, return_when::first_completed, return_when::first_exception}) {
        auto r = muster::wait(fs, when);
        EXPECT_EQ(r.done.size(), 4u);
        EXPECT_TRUE(r.not_done.empty());
    }
}

// items 46, W14: an invalid return_when throws invalid_argument even when every input is done,
// for an empty input, and at once (without blocking) for pending inputs
TEST(Wait, InvalidReturnWhenThrowsEvenWhenAllAreDone) {
    auto const bad = static_cast<return_when>(42);
    muster::thread_pool pool({.max_workers = 1});
    futures done{muster_test::done_future(pool, 1)};
    EXPECT_THROW(muster::wait(done, bad), muster::invalid_argument);
    EXPECT_THROW(muster::wait(done, bad, 0ms), muster::invalid_argument);
    EXPECT_THROW(muster::wait(futures{}, bad), muster::invalid_argument);
    held_pool hp;
    futures pending{hp.submit([] { return 1; })};
    EXPECT_THROW(muster::wait(pending, bad), muster::invalid_argument);
    EXPECT_THROW(muster::wait(pending, static_cast<return_when>(-1)), muster::invalid_argument);
    EXPECT_FALSE(pending[0].done());
}

// item 3, W1 (deliberate deviation from item 47): a cancelled never-run future is done for
// wait(all_completed), which returns
TEST(Wait, AllCompletedWithACancelledNeverRunFutureReturns) {
    held_pool hp;
    auto p = hp.submit([] { return 1; });
    auto q = hp.submit([] { return 2; });
    ASSERT_TRUE(p.cancel());
    ASSERT_TRUE(q.cancel());
    // The worker stays held: the tasks never reach it before wait returns.
    auto r = muster::wait(futures{p, q});
    EXPECT_EQ(r.done.size(), 2u);
    EXPECT_TRUE(r.not_done.empty());
    for (auto const& f : r.done) EXPECT_TRUE(f.cancelled());
}

// item 3, W1 (deliberate deviation from item 47): cancel() wakes a wait(first_completed) that is
// blocked
TEST(Wait, CancelWakesABlockedFirstCompletedWait) {
    held_pool hp;
    auto p = hp.submit([] { return 1; });
    auto q = hp.submit([] { return 2; });
    auto waiter = start_wait(futures{p, q}, return_when::first_completed);
    // Gives the waiter the chance to block first, so that the cancellation has to wake it.
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(q.cancel());
    auto r = waiter.get();  // the worker is still held: only the cancellation can end the wait
    ASSERT_EQ(r.done.size(), 1u);
    EXPECT_TRUE(r.done[0].cancelled());
    ASSERT_EQ(r.not_done.size(), 1u);
    EXPECT_FALSE(r.not_done[0].done());
}

// items 3, 38, W1: cancel() also completes a blocked wait(all_completed)
TEST(Wait, CancelCompletesABlockedAllCompletedWait) {
    held_pool hp;
    auto p = hp.submit([] { return 1; });
    auto waiter = start_wait(futures{p});
    // Gives the waiter the chance to block first, so that the cancellation has to wake it.
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(p.cancel());
    auto r = waiter.get();
    ASSERT_EQ(r.done.size(), 1u);
    EXPECT_TRUE(r.done[0].cancelled());
}

// item 37: the input may be any input range: a list, a filtered view, a span
TEST(Wait, AcceptsAnyInputRange) {
    muster::thread_pool pool({.max_workers = 2});
    std::list<muster::future<int>> list;
    for (int i = 0; i < 6; ++i) list.push_back(muster_test::done_future(pool, i));
    EXPECT_EQ(muster::wait(list).done.size(), 6u);
    futures const vec(list.begin(), list.end());
    auto odd = muster::wait(
        vec | std::views::filter([](const muster::future<int>& f) { return f.result() % 2 == 1; }));
    EXPECT_EQ(sorted_results(odd.done), (std::vector<int>{1, 3, 5}));
    EXPECT_EQ(muster::wait(std::span<const muster::future<int>>(vec), return_when::first_completed)
                  .done.size(),
              6u);
}

// A future without a task is a caller error: invalid_argument.
TEST(Wait, FutureWithoutTaskThrowsInvalidArgument) {
    muster::thread_pool pool({.max_workers = 1});
    futures fs{muster_test::done_future(pool, 1), muster::future<int>()};
    EXPECT_THROW(muster::wait(fs), muster::invalid_argument);
}

// items 37, 38: the initializer-list form, and void futures
TEST(Wait, InitializerListAndVoidFutures) {
    muster::thread_pool pool({.max_workers = 2});
    auto a = pool.submit([] { return 1; });
    auto b = pool.submit([] { return 2; });
    auto r = muster::wait({a, b, a});
    EXPECT_EQ(r.done.size(), 2u);
    std::vector<muster::future<void>> vs;
    for (int i = 0; i < 10; ++i) vs.push_back(pool.submit([] {}));
    auto rv = muster::wait(vs);
    EXPECT_EQ(rv.done.size(), 10u);
    EXPECT_TRUE(rv.not_done.empty());
}

// item 38: futures from several executors can be waited on together
TEST(Wait, FuturesFromSeveralPools) {
    muster::thread_pool p1({.max_workers = 1});
    muster::thread_pool p2({.max_workers = 2});
    futures fs;
    for (int i = 0; i < 20; ++i) fs.push_back((i % 2 ? p1 : p2).submit([i] { return i; }));
    auto r = muster::wait(fs);
    EXPECT_EQ(r.done.size(), 20u);
}

// item 38: wait inside a task of a one-worker pool, over tasks queued to that same pool behind it,
// completes (the waiting worker runs them)
TEST(Wait, WaitOnAWorkerRunsTheAwaitedTasks) {
    muster::thread_pool pool({.max_workers = 1});
    auto outer = pool.submit([&pool] {
        futures inner;
        for (int i = 0; i < 10; ++i) inner.push_back(pool.submit([i] { return i; }));
        auto r = muster::wait(inner);
        int sum = 0;
        for (auto const& f : r.done) sum += f.result();
        return r.not_done.empty() ? sum : -1;
    });
    EXPECT_EQ(outer.result(), 45);
}

}  // namespace
