// muster::as_completed: reference items 28-36 and weaknesses W1 (a cancelled future is yielded at
// once; item 34 is a deliberate deviation) and W3 (the deadline is fixed when as_completed is
// called; item 36 is a deliberate deviation).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <list>
#include <muster/muster.hpp>
#include <optional>
#include <ranges>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "futures_support.hpp"

namespace {

using namespace std::chrono_literals;
using muster_test::gate;
using muster_test::held_pool;
using muster_test::lifetime_counts;
using muster_test::test_error;
using futures = std::vector<muster::future<int>>;
using steady = std::chrono::steady_clock;

// The value of a yielded future, or -1 for a failed one and -2 for a cancelled one.
int outcome(const muster::future<int>& f) {
    if (f.cancelled()) return -2;
    if (f.exception()) return -1;
    return f.result();
}

// item 28: every distinct future is yielded exactly once: finished, failed, cancelled, and ones
// that complete later, from different pools
TEST(AsCompleted, YieldsEachDistinctFutureExactlyOnce) {
    muster::thread_pool other({.max_workers = 2});
    held_pool hp;
    futures fs{muster_test::done_future(other, 1), muster_test::failed_future(other, "x")};
    auto c = hp.submit([] { return 0; });
    ASSERT_TRUE(c.cancel());
    fs.push_back(c);
    for (int i = 10; i < 15; ++i) fs.push_back(hp.submit([i] { return i; }));
    for (int i = 20; i < 25; ++i) fs.push_back(other.submit([i] { return i; }));
    std::vector<int> seen;
    {
        auto range = muster::as_completed(fs);
        hp.release();
        for (auto& f : range) {
            EXPECT_TRUE(f.done());
            seen.push_back(outcome(f));
        }
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<int>{-2, -1, 1, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24}));
}

// items 29, W1 (deliberate deviation from item 34: a cancelled future is complete at once): futures
// already done, a cancelled one included, come first; the others follow in completion order,
// forced here with gates
TEST(AsCompleted, AlreadyDoneFirstThenCompletionOrder) {
    gate ga;
    gate gb;
    std::latch both_running{2};
    muster::thread_pool other({.max_workers = 1});
    muster::thread_pool two({.max_workers = 2});
    muster_test::open_on_exit opener{&ga, &gb};
    auto a = two.submit([&] {
        both_running.count_down();
        ga.wait();
        return 100;
    });
    auto b = two.submit([&] {
        both_running.count_down();
        gb.wait();
        return 200;
    });
    both_running.wait();
    held_pool hp;
    auto c = hp.submit([] { return 0; });
    ASSERT_TRUE(c.cancel());
    auto d = muster_test::done_future(other, 1);

    auto range = muster::as_completed(futures{a, d, b, c});
    auto it = range.begin();
    ASSERT_NE(it, range.end());
    std::set<int> first_two{outcome(*it)};
    ++it;
    ASSERT_NE(it, range.end());
    first_two.insert(outcome(*it));
    EXPECT_EQ(first_two, (std::set<int>{-2, 1})) << "the already-done futures must come first";

    gb.open();  // b completes first although it comes later in the input
    ++it;
    ASSERT_NE(it, range.end());
    EXPECT_EQ(outcome(*it), 200);
    ga.open();
    ++it;
    ASSERT_NE(it, range.end());
    EXPECT_EQ(outcome(*it), 100);
    ++it;
    EXPECT_EQ(it, range.end());
}

// item 30: duplicates in the input are yielded once
TEST(AsCompleted, DuplicatesAreYieldedOnce) {
    muster::thread_pool pool({.max_workers = 1});
    auto a = muster_test::done_future(pool, 1);
    auto b = muster_test::done_future(pool, 2);
    std::vector<int> seen;
    for (auto& f : muster::as_completed(futures{a, a, b, a, b, muster::future<int>(a)}))
        seen.push_back(f.result());
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

// item 30: duplicates of futures that complete later are yielded once too
TEST(AsCompleted, DuplicatesOfPendingFuturesAreYieldedOnce) {
    held_pool hp;
    auto p = hp.submit([] { return 1; });
    auto q = hp.submit([] { return 2; });
    std::vector<int> seen;
    {
        auto range = muster::as_completed(futures{p, q, p, q, p});
        hp.release();
        for (auto& f : range) seen.push_back(f.result());
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

// item 31: an empty input ends at once, even with a zero timeout
TEST(AsCompleted, EmptyInputEndsAtOnceEvenWithZeroTimeout) {
    futures none;
    int n = 0;
    for (auto& f : muster::as_completed(none)) {
        (void)f;
        ++n;
    }
    EXPECT_NO_THROW({
        for (auto& f : muster::as_completed(none, 0ms)) {
            (void)f;
            ++n;
        }
    });
    EXPECT_NO_THROW({
        for (auto& f : muster::as_completed(none, -1s)) {
            (void)f;
            ++n;
        }
    });
    EXPECT_EQ(n, 0);
    auto range = muster::as_completed(none, 0ms);
    EXPECT_EQ(range.begin(), range.end());
    EXPECT_TRUE(range.exhausted());
}

// items 32, 33: on timeout, the done futures are yielded first, then advancing throws
// timeout_error "N (of M) futures unfinished", and the futures are not changed
TEST(AsCompleted, TimeoutYieldsDoneThenThrowsWithCounts) {
    muster::thread_pool other({.max_workers = 1});
    held_pool hp({}, 7);
    auto b = hp.blocker_future();
    auto p = hp.submit([] { return 8; });
    futures fs{muster_test::done_future(other, 1), b, muster_test::done_future(other, 2), p,
               muster_test::failed_future(other, "f")};
    fs.push_back(fs[0]);  // a duplicate: M counts distinct futures
    std::vector<int> yielded;
    std::string message;
    {
        auto range = muster::as_completed(fs, 30ms);
        try {
            for (auto& f : range) yielded.push_back(outcome(f));
            ADD_FAILURE() << "the iteration ended without a timeout";
        } catch (const muster::timeout_error& e) {
            message = e.what();
        }
    }
    std::sort(yielded.begin(), yielded.end());
    EXPECT_EQ(yielded, (std::vector<int>{-1, 1, 2}));
    EXPECT_NE(message.find("2 (of 5) futures unfinished"), std::string::npos) << message;
    // item 33: the unfinished futures are unchanged and still complete.
    EXPECT_TRUE(b.running());
    EXPECT_FALSE(p.done());
    EXPECT_FALSE(p.cancelled());
    hp.release();
    EXPECT_EQ(b.result(), 7);
    EXPECT_EQ(p.result(), 8);
}

// item 32: with a zero timeout the done futures are still yielded before the timeout
TEST(AsCompleted, ZeroTimeoutStillYieldsTheDoneFutures) {
    muster::thread_pool other({.max_workers = 1});
    held_pool hp;
    auto p = hp.submit([] { return 3; });
    futures fs{muster_test::done_future(other, 1), p, muster_test::done_future(other, 2)};
    auto range = muster::as_completed(fs, 0ms);
    std::vector<int> yielded;
    std::string message;
    try {
        for (auto& f : range) yielded.push_back(f.result());
        ADD_FAILURE() << "the iteration ended without a timeout";
    } catch (const muster::timeout_error& e) {
        message = e.what();
    }
    std::sort(yielded.begin(), yielded.end());
    EXPECT_EQ(yielded, (std::vector<int>{1, 2}));
    EXPECT_NE(message.find("1 (of 3) futures unfinished"), std::string::npos) << message;
    EXPECT_FALSE(p.done());
}

// item 32: with nothing done, the first step (begin) throws, and reports every future
TEST(AsCompleted, TimeoutBeforeAnythingIsDoneThrowsFromBegin) {
    held_pool hp;
    futures fs{hp.submit([] { return 1; }), hp.submit([] { return 2; })};
    auto range = muster::as_completed(fs, 20ms);
    try {
        (void)range.begin();
        FAIL() << "begin() returned";
    } catch (const muster::timeout_error& e) {
        EXPECT_NE(std::string(e.what()).find("2 (of 2) futures unfinished"), std::string::npos)
            << e.what();
    }
}

// W3 (deliberate deviation from item 36): the deadline is fixed when as_completed is called, not at
// begin(). The range is made, more than the timeout passes, and only then does iteration start: it
// must time out at once. The awaited future completes a little after begin() is called, so an
// implementation that started the clock at begin() would yield it instead.
TEST(AsCompleted, TheDeadlineStartsAtTheCallNotAtBegin) {
    constexpr auto timeout = 200ms;
    held_pool hp;
    auto p = hp.submit([] { return 1; });
    auto const called = steady::now();
    auto range = muster::as_completed(futures{p}, timeout);
    muster_test::elapse_at_least(called, 2 * timeout);
    ASSERT_FALSE(p.done());
    std::latch about_to_begin{1};
    std::thread completer([&] {
        about_to_begin.wait();
        // Gives an implementation that measures from begin() the chance to see p complete.
        std::this_thread::sleep_for(timeout / 2);
        hp.release();
    });
    about_to_begin.count_down();
    bool timed_out = false;
    try {
        (void)range.begin();
    } catch (const muster::timeout_error& e) {
        timed_out = true;
        EXPECT_NE(std::string(e.what()).find("1 (of 1) futures unfinished"), std::string::npos)
            << e.what();
    } catch (...) {
        ADD_FAILURE() << "begin() threw something other than timeout_error";
    }
    completer.join();
    EXPECT_TRUE(timed_out) << "the deadline was measured from begin(), not from the call";
    EXPECT_EQ(p.result(), 1);
}

// W1 (deliberate deviation from item 34): a cancelled future is done for as_completed at once:
// cancelling a future wakes a blocked iteration and the future is yielded, cancelled
TEST(AsCompleted, CancelWakesTheIterationAndIsYielded) {
    held_pool hp;
    auto p = hp.submit([] { return 1; });
    auto q = hp.submit([] { return 2; });
    std::latch range_made{1};
    std::latch first_yielded{1};
    auto consumer = std::async(std::launch::async, [&] {
        std::vector<bool> cancelled;
        auto range = muster::as_completed(futures{p, q});
        range_made.count_down();
        for (auto& f : range) {
            cancelled.push_back(f.cancelled());
            if (cancelled.size() == 1) first_yielded.count_down();
        }
        return cancelled;
    });
    range_made.wait();
    ASSERT_TRUE(q.cancel());  // the worker stays held: only cancellations can make progress
    first_yielded.wait();
    ASSERT_TRUE(p.cancel());
    auto const cancelled = consumer.get();
    EXPECT_EQ(cancelled, (std::vector<bool>{true, true}));
}

// item 28: futures that complete while as_completed is being set up are each yielded once
TEST(AsCompleted, FuturesCompletingDuringSetupAreYieldedOnce) {
    muster::thread_pool pool({.max_workers = 2});
    for (int round = 0; round < 5; ++round) {
        constexpr int n = 400;
        futures fs;
        for (int i = 0; i < n; ++i) fs.push_back(pool.submit([i] { return i; }));
        std::vector<int> seen;
        for (auto& f : muster::as_completed(fs)) seen.push_back(f.result());
        std::sort(seen.begin(), seen.end());
        ASSERT_EQ(seen.size(), static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) ASSERT_EQ(seen[i], i);
    }
}

// item 35: dropping the range before the end is safe; the futures complete afterwards
TEST(AsCompleted, DroppingTheRangeEarlyIsSafe) {
    muster::thread_pool other({.max_workers = 1});
    held_pool hp;
    futures fs{muster_test::done_future(other, 1)};
    for (int i = 0; i < 5; ++i) fs.push_back(hp.submit([i] { return 10 + i; }));
    {
        auto range = muster::as_completed(fs);
        auto it = range.begin();
        EXPECT_EQ(it->result(), 1);
    }  // dropped with five futures still registered
    {
        auto range = muster::as_completed(fs);
        (void)range;
    }  // dropped before iterating
    hp.release();
    std::vector<int> results;
    for (auto const& f : fs) results.push_back(f.result());
    EXPECT_EQ(results, (std::vector<int>{1, 10, 11, 12, 13, 14}));
}

// item 35: dropping the range after it yielded futures that completed while it watched them
TEST(AsCompleted, DroppingTheRangeAfterYieldingLateCompletionsIsSafe) {
    gate last;
    held_pool hp;
    muster_test::open_on_exit opener{&last};
    futures fs{hp.submit([] { return 1; }), hp.submit([] { return 2; }), hp.submit([&] {
                   last.wait();
                   return 3;
               })};
    {
        auto range = muster::as_completed(fs);
        hp.release();
        auto it = range.begin();
        EXPECT_EQ(it->result(), 1);
        ++it;
        EXPECT_EQ(it->result(), 2);
    }  // dropped while the third is still running
    last.open();
    EXPECT_EQ(fs[2].result(), 3);
}

// item 35: the range keeps no reference to a future it has yielded (the value is freed as soon as
// the caller drops its handles, while the range still exists)
TEST(AsCompleted, KeepsNoReferenceToYieldedFutures) {
    lifetime_counts counts;
    gate go;
    muster::thread_pool pool({.max_workers = 1});
    muster_test::open_on_exit opener{&go};
    std::vector<muster::future<muster_test::counted>> fs;
    fs.push_back(pool.submit([&] {
        go.wait();
        return muster_test::counted(counts, 1);
    }));
    auto range = muster::as_completed(fs);
    fs.clear();  // the range now holds the only handle
    go.open();
    auto it = range.begin();
    ASSERT_NE(it, range.end());
    EXPECT_EQ(it->result().value(), 1);
    pool.wait_idle();  // the worker has dropped its own reference to the task
    EXPECT_EQ(counts.alive(), 1);
    ++it;  // the range hands the future over and drops it
    EXPECT_EQ(it, range.end());
    EXPECT_EQ(counts.alive(), 0) << "the range still refers to a yielded future";
}

// item 28: as_completed inside a task of a one-worker pool, over tasks queued to the same pool
// behind it, completes (the waiting worker runs them)
TEST(AsCompleted, OnAWorkerOverTasksOfTheSamePoolCompletes) {
    muster::thread_pool pool({.max_workers = 1});
    auto outer = pool.submit([&pool] {
        futures inner;
        for (int i = 0; i < 10; ++i) inner.push_back(pool.submit([i] { return i; }));
        int sum = 0;
        int count = 0;
        for (auto& f : muster::as_completed(inner)) {
            sum += f.result();
            ++count;
        }
        return count == 10 ? sum : -1;
    });
    EXPECT_EQ(outer.result(), 45);
}

// item 28: a failed future is yielded like any other and its result() rethrows
TEST(AsCompleted, FailedFuturesAreYieldedAndRethrow) {
    muster::thread_pool pool({.max_workers = 2});
    futures fs;
    for (int i = 0; i < 6; ++i)
        fs.push_back(pool.submit([i]() -> int {
            if (i % 2) throw test_error("odd", i);
            return i;
        }));
    int failures = 0;
    int sum = 0;
    for (auto& f : muster::as_completed(fs)) {
        try {
            sum += f.result();
        } catch (const test_error& e) {
            EXPECT_EQ(e.code() % 2, 1);
            ++failures;
        }
    }
    EXPECT_EQ(failures, 3);
    EXPECT_EQ(sum, 0 + 2 + 4);
}

// item 28: void futures, the initializer-list form, and a moved range
TEST(AsCompleted, VoidFuturesInitializerListAndMovedRange) {
    muster::thread_pool pool({.max_workers = 2});
    auto a = pool.submit([] {});
    auto b = pool.submit([] {});
    int n = 0;
    auto range = muster::as_completed({a, b, a});
    auto moved = std::move(range);
    for (auto& f : moved) {
        f.result();
        ++n;
    }
    EXPECT_EQ(n, 2);
}

// item 30: the input may be any input range: a list, a filtered view, a span
TEST(AsCompleted, AcceptsAnyInputRange) {
    muster::thread_pool pool({.max_workers = 2});
    std::list<muster::future<int>> list;
    for (int i = 0; i < 6; ++i) list.push_back(muster_test::done_future(pool, i));
    int n = 0;
    for (auto& f : muster::as_completed(list)) n += f.result() >= 0 ? 1 : 0;
    EXPECT_EQ(n, 6);
    futures vec(list.begin(), list.end());
    std::vector<int> even;
    for (auto& f : muster::as_completed(vec | std::views::filter([](const muster::future<int>& g) {
                                            return g.result() % 2 == 0;
                                        })))
        even.push_back(f.result());
    std::sort(even.begin(), even.end());
    EXPECT_EQ(even, (std::vector<int>{0, 2, 4}));
    n = 0;
    for (auto& f : muster::as_completed(std::span<const muster::future<int>>(vec), 1h)) {
        (void)f;
        ++n;
    }
    EXPECT_EQ(n, 6);
}

// A future without a task is a caller error: invalid_argument.
TEST(AsCompleted, FutureWithoutTaskThrowsInvalidArgument) {
    futures fs{muster::future<int>()};
    EXPECT_THROW((void)muster::as_completed(fs), muster::invalid_argument);
}

}  // namespace
