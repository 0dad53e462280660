// muster::completion_queue<T, Tag>: tagged futures in completion order. Its semantics follow
// as_completed (items 28, 29, and W1 for cancellations) and the error split of the hand-written
// pools' result and error queues.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <muster/muster.hpp>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "futures_support.hpp"

namespace {

using namespace std::chrono_literals;
using muster_test::gate;
using muster_test::held_pool;
using muster_test::test_error;

// item 29: pop order is completion order (forced with gates), not the order of add()
TEST(CompletionQueue, PopOrderIsCompletionOrder) {
    gate ga;
    gate gb;
    gate gc;
    muster::thread_pool pool({.max_workers = 3});
    muster_test::open_on_exit opener{&ga, &gb, &gc};
    muster::completion_queue<int, std::string> q;
    q.submit(pool, "a", [&] {
        ga.wait();
        return 1;
    });
    q.submit(pool, "b", [&] {
        gb.wait();
        return 2;
    });
    q.submit(pool, "c", [&] {
        gc.wait();
        return 3;
    });
    gc.open();
    auto first = q.pop();
    EXPECT_EQ(first.tag, "c");
    EXPECT_EQ(first.future.result(), 3);
    ga.open();
    auto second = q.pop();
    EXPECT_EQ(second.tag, "a");
    EXPECT_EQ(second.future.result(), 1);
    gb.open();
    auto third = q.pop();
    EXPECT_EQ(third.tag, "b");
    EXPECT_EQ(third.future.result(), 2);
    EXPECT_TRUE(q.empty());
}

// The same order, observed without blocking: pairs are appended as their tasks complete. One
// worker runs the tasks one after the other, so completion order is the order they ran in.
TEST(CompletionQueue, ReadyPairsKeepCompletionOrder) {
    std::mutex mu;
    std::vector<std::size_t> ran;
    held_pool hp;
    muster::completion_queue<int> q;
    for (std::size_t i = 0; i < 5; ++i)
        q.add(i, hp.submit([&, i] {
            std::lock_guard lock(mu);
            ran.push_back(i);
            return static_cast<int>(i);
        }));
    hp.release();
    q.wait_all();
    std::vector<std::size_t> tags;
    while (auto e = q.try_pop()) tags.push_back(e->tag);
    std::lock_guard lock(mu);
    ASSERT_EQ(ran.size(), 5u);
    EXPECT_EQ(tags, ran);
}

// try_pop on an empty queue returns nothing and does not block; with pending futures too
TEST(CompletionQueue, TryPopOnEmptyReturnsNothing) {
    muster::completion_queue<int> q;
    EXPECT_FALSE(q.try_pop().has_value());
    held_pool hp;
    q.add(1, hp.submit([] { return 1; }));
    EXPECT_FALSE(q.try_pop().has_value());
    EXPECT_EQ(q.pending(), 1u);
    hp.release();
    q.wait_all();
    auto e = q.try_pop();
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->tag, 1u);
    EXPECT_EQ(e->future.result(), 1);
}

// pop() on an empty queue with nothing pending would block forever: it throws muster::error
TEST(CompletionQueue, PopOnEmptyWithNothingPendingThrows) {
    muster::completion_queue<int> q;
    EXPECT_THROW((void)q.pop(), muster::error);
    muster::thread_pool pool({.max_workers = 1});
    q.add(1, muster_test::done_future(pool, 5));
    EXPECT_EQ(q.pop().future.result(), 5);
    EXPECT_THROW((void)q.pop(), muster::error) << "drained queue";
}

// pop_for returns nothing when no pair becomes ready in time, and leaves the future watched
TEST(CompletionQueue, PopForTimesOutWithNothing) {
    held_pool hp;
    muster::completion_queue<int> q;
    q.add(7, hp.submit([] { return 70; }));
    EXPECT_FALSE(q.pop_for(20ms).has_value());
    EXPECT_FALSE(q.pop_for(0ms).has_value());
    EXPECT_FALSE(q.pop_for(-1ms).has_value());
    EXPECT_EQ(q.pending(), 1u);
    hp.release();
    auto e = q.pop_for(1h);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->tag, 7u);
    EXPECT_EQ(e->future.result(), 70);
    // Nothing pending any more: pop_for returns nothing at once instead of waiting.
    EXPECT_FALSE(q.pop_for(1h).has_value());
}

// pop() blocks until a completion arrives
TEST(CompletionQueue, PopBlocksUntilACompletion) {
    held_pool hp;
    muster::completion_queue<int> q;
    q.add(3, hp.submit([] { return 30; }));
    std::latch about_to_pop{1};
    auto consumer = std::async(std::launch::async, [&] {
        about_to_pop.count_down();
        return q.pop();
    });
    about_to_pop.wait();
    hp.release();
    auto e = consumer.get();
    EXPECT_EQ(e.tag, 3u);
    EXPECT_EQ(e.future.result(), 30);
}

// wait_for_tag waits for that tag only, removes its pair, and returns its (done) future
TEST(CompletionQueue, WaitForTagReturnsThatTagsFuture) {
    gate ga;
    gate gb;
    muster::thread_pool pool({.max_workers = 3});
    muster_test::open_on_exit opener{&ga, &gb};
    muster::completion_queue<int, std::string> q;
    q.submit(pool, "a", [&] {
        ga.wait();
        return 1;
    });
    q.submit(pool, "b", [&] {
        gb.wait();
        return 2;
    });
    q.submit(pool, "c", [] { return 3; });
    std::latch about_to_wait{1};
    auto waiter = std::async(std::launch::async, [&] {
        about_to_wait.count_down();
        return q.wait_for_tag("b");
    });
    about_to_wait.wait();
    ga.open();  // "a" (and "c") complete, but the waiter wants "b"
    EXPECT_EQ(waiter.wait_for(20ms), std::future_status::timeout)
        << "wait_for_tag returned for another tag";
    gb.open();
    auto f = waiter.get();
    EXPECT_TRUE(f.done());
    EXPECT_EQ(f.result(), 2);
    q.wait_all();
    EXPECT_EQ(q.ready(), 2u) << "the pairs of the other tags stay in the queue";
    std::set<std::string> rest;
    while (auto e = q.try_pop()) rest.insert(e->tag);
    EXPECT_EQ(rest, (std::set<std::string>{"a", "c"}));
}

// wait_for_tag on a tag that is already ready returns at once
TEST(CompletionQueue, WaitForTagAlreadyReady) {
    muster::thread_pool pool({.max_workers = 1});
    muster::completion_queue<int, std::string> q;
    q.add("x", muster_test::done_future(pool, 9));
    EXPECT_EQ(q.wait_for_tag("x").result(), 9);
    EXPECT_TRUE(q.empty());
}

// wait_for_tag with a tag never added, or already taken, throws invalid_argument
TEST(CompletionQueue, WaitForUnknownTagThrowsInvalidArgument) {
    muster::thread_pool pool({.max_workers = 1});
    muster::completion_queue<int, std::string> q;
    EXPECT_THROW((void)q.wait_for_tag("nope"), muster::invalid_argument);
    q.add("x", muster_test::done_future(pool, 1));
    EXPECT_THROW((void)q.wait_for_tag("nope"), muster::invalid_argument);
    EXPECT_EQ(q.wait_for_tag("x").result(), 1);
    EXPECT_THROW((void)q.wait_for_tag("x"), muster::invalid_argument) << "already taken";
}

// take_results/take_errors split the ready pairs: successes with their values, failures and
// cancellations (as cancelled_error) with their exceptions, each in completion order
TEST(CompletionQueue, TakeResultsAndTakeErrorsSplitTheReadyPairs) {
    std::mutex mu;
    std::vector<std::string> ran;  // completion order of the tasks that run (one worker)
    auto record = [&](const std::string& tag) {
        std::lock_guard lock(mu);
        ran.push_back(tag);
    };
    held_pool hp;
    muster::completion_queue<int, std::string> q;
    q.add("ok1", hp.submit([&] {
        record("ok1");
        return 1;
    }));
    q.add("bad1", hp.submit([&]() -> int {
        record("bad1");
        throw test_error("bad one", 1);
    }));
    auto c = hp.submit([] { return 0; });
    q.add("cancelled", c);
    q.add("ok2", hp.submit([&] {
        record("ok2");
        return 2;
    }));
    q.add("bad2", hp.submit([&]() -> int {
        record("bad2");
        throw test_error("bad two", 2);
    }));
    ASSERT_TRUE(c.cancel());  // completes before every task that runs
    hp.release();
    q.wait_all();
    EXPECT_EQ(q.ready(), 5u);
    std::vector<std::string> ok_order;
    std::vector<std::string> error_order{"cancelled"};
    {
        std::lock_guard lock(mu);
        for (auto const& tag : ran) (tag.starts_with("ok") ? ok_order : error_order).push_back(tag);
    }
    ASSERT_EQ(ok_order.size(), 2u);
    ASSERT_EQ(error_order.size(), 3u);

    auto results = q.take_results();
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[0].first, ok_order[0]);
    EXPECT_EQ(results[1].first, ok_order[1]);
    for (auto const& [tag, value] : results) EXPECT_EQ(value, tag == "ok1" ? 1 : 2);
    EXPECT_EQ(q.ready(), 3u) << "the failures stay for take_errors";
    EXPECT_TRUE(q.take_results().empty());

    auto errors = q.take_errors();
    ASSERT_EQ(errors.size(), 3u);
    for (std::size_t i = 0; i < errors.size(); ++i) {
        auto const& [tag, e] = errors[i];
        EXPECT_EQ(tag, error_order[i]);
        if (tag == "cancelled") {
            EXPECT_THROW(std::rethrow_exception(e), muster::cancelled_error);
        } else {
            EXPECT_THROW(std::rethrow_exception(e), test_error);
            EXPECT_EQ(muster_test::message_of(e), tag == "bad1" ? "bad one" : "bad two");
        }
    }
    EXPECT_TRUE(q.empty());
    EXPECT_TRUE(q.take_errors().empty());
}

// items 14, 28: take_results hands out the values without taking them away from the other
// handles to the same tasks: the future returned by submit() (or passed to add()) still returns
// its value afterwards, as a future's result never changes once done
TEST(CompletionQueue, TakeResultsLeavesTheCallersFuturesIntact) {
    muster::thread_pool pool({.max_workers = 1});
    muster::completion_queue<std::string> q;
    auto submitted =
        q.submit(pool, 1, [] { return std::string("a value long enough to be heap allocated"); });
    auto added = pool.submit([] { return std::string("another value, also too long for SSO"); });
    q.add(2, added);
    q.wait_all();
    auto results = q.take_results();
    ASSERT_EQ(results.size(), 2u);
    std::sort(results.begin(), results.end());
    EXPECT_EQ(results[0].second, "a value long enough to be heap allocated");
    EXPECT_EQ(results[1].second, "another value, also too long for SSO");
    EXPECT_EQ(submitted.result(), "a value long enough to be heap allocated")
        << "take_results() emptied the future returned by submit()";
    EXPECT_EQ(added.result(), "another value, also too long for SSO")
        << "take_results() emptied the future passed to add()";
}

// take_results works for move-only values
TEST(CompletionQueue, TakeResultsOfMoveOnlyValues) {
    muster::thread_pool pool({.max_workers = 1});
    muster::completion_queue<std::unique_ptr<int>> q;
    for (int i = 0; i < 3; ++i)
        (void)q.submit(pool, static_cast<std::size_t>(i), [i] { return std::make_unique<int>(i); });
    q.wait_all();
    auto results = q.take_results();
    ASSERT_EQ(results.size(), 3u);
    for (auto const& [tag, value] : results) {
        ASSERT_TRUE(value);
        EXPECT_EQ(static_cast<std::size_t>(*value), tag);
    }
}

// take_results/take_errors do not block: they take only what is ready
TEST(CompletionQueue, TakeDoesNotBlockOnPendingFutures) {
    muster::thread_pool other({.max_workers = 1});
    held_pool hp;
    muster::completion_queue<int> q;
    q.add(1, muster_test::done_future(other, 10));
    q.add(2, hp.submit([] { return 20; }));
    auto results = q.take_results();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].second, 10);
    EXPECT_TRUE(q.take_errors().empty());
    EXPECT_EQ(q.pending(), 1u);
    hp.release();
    q.wait_all();
    results = q.take_results();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0], (std::pair<std::size_t, int>{2, 20}));
}

// take_results on void futures returns the tags
TEST(CompletionQueue, TakeResultsOfVoidFuturesReturnsTags) {
    muster::thread_pool pool({.max_workers = 2});
    muster::completion_queue<void, int> q;
    for (int i = 0; i < 4; ++i) q.submit(pool, i, [] {});
    q.submit(pool, 99, [] { throw test_error("void", 0); });
    q.wait_all();
    auto tags = q.take_results();
    std::sort(tags.begin(), tags.end());
    EXPECT_EQ(tags, (std::vector<int>{0, 1, 2, 3}));
    auto errors = q.take_errors();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].first, 99);
}

// wait_all returns once nothing is pending; pending()/ready()/empty() follow the life cycle
TEST(CompletionQueue, WaitAllAndCounters) {
    muster::completion_queue<int> q;
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.pending(), 0u);
    EXPECT_EQ(q.ready(), 0u);
    q.wait_all();  // nothing pending: returns at once

    held_pool hp;
    for (std::size_t i = 0; i < 3; ++i) q.add(i, hp.submit([i] { return static_cast<int>(i); }));
    EXPECT_EQ(q.pending(), 3u);
    EXPECT_EQ(q.ready(), 0u);
    EXPECT_FALSE(q.empty());

    std::latch about_to_wait{1};
    auto waiter = std::async(std::launch::async, [&] {
        about_to_wait.count_down();
        q.wait_all();
        return q.pending();
    });
    about_to_wait.wait();
    hp.release();
    EXPECT_EQ(waiter.get(), 0u);
    EXPECT_EQ(q.ready(), 3u);
    EXPECT_FALSE(q.empty());
    (void)q.pop();
    EXPECT_EQ(q.ready(), 2u);
    (void)q.pop();
    (void)q.pop();
    EXPECT_TRUE(q.empty());
}

// An already-done future is ready as soon as it is added; a future without a task is refused.
TEST(CompletionQueue, AddDoneFutureIsReadyAtOnceAndInvalidFutureIsRefused) {
    muster::thread_pool pool({.max_workers = 1});
    muster::completion_queue<int> q;
    q.add(4, muster_test::done_future(pool, 40));
    EXPECT_EQ(q.pending(), 0u);
    EXPECT_EQ(q.ready(), 1u);
    EXPECT_THROW(q.add(5, muster::future<int>()), muster::invalid_argument);
    EXPECT_EQ(q.ready(), 1u);
    EXPECT_EQ(q.pending(), 0u);
}

// item 3: cancel_pending cancels the futures that have not started, which become ready as
// cancelled at once; a running one is left alone
TEST(CompletionQueue, CancelPendingCancelsNotStartedFutures) {
    held_pool hp({}, 5);
    muster::completion_queue<int> q;
    q.add(0, hp.blocker_future());  // running
    for (std::size_t i = 1; i <= 3; ++i) q.add(i, hp.submit([i] { return static_cast<int>(i); }));
    EXPECT_EQ(q.cancel_pending(), 3u);
    EXPECT_EQ(q.pending(), 1u);
    EXPECT_EQ(q.ready(), 3u);
    auto errors = q.take_errors();
    ASSERT_EQ(errors.size(), 3u);
    for (auto const& [tag, e] : errors) {
        EXPECT_NE(tag, 0u);
        EXPECT_THROW(std::rethrow_exception(e), muster::cancelled_error);
    }
    EXPECT_EQ(q.cancel_pending(), 0u) << "the running one cannot be cancelled";
    hp.release();
    auto last = q.pop();
    EXPECT_EQ(last.tag, 0u);
    EXPECT_EQ(last.future.result(), 5);
}

// Destroying the queue while futures are pending is safe; the futures are unaffected.
TEST(CompletionQueue, DestroyingWithPendingFuturesIsSafe) {
    held_pool hp;
    std::vector<muster::future<int>> fs;
    {
        muster::completion_queue<int> q;
        for (int i = 0; i < 5; ++i)
            fs.push_back(q.submit(hp.pool(), static_cast<std::size_t>(i), [i] { return i; }));
        auto cancelled = hp.submit([] { return 0; });
        q.add(99, cancelled);
        ASSERT_TRUE(cancelled.cancel());
        EXPECT_EQ(q.pending(), 5u);
    }
    hp.release();
    for (int i = 0; i < 5; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(), i);
}

// Any number of producers and consumers at once: every pair is popped exactly once.
TEST(CompletionQueue, ConcurrentProducersAndConsumers) {
    constexpr int producers = 2;
    constexpr int consumers = 2;
    constexpr int per_producer = 300;
    constexpr int total = producers * per_producer;
    muster::thread_pool pool({.max_workers = 2});
    muster::completion_queue<int, int> q;
    std::atomic<int> taken{0};
    std::vector<std::atomic<int>> seen(total);
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&, p] {
            for (int i = 0; i < per_producer; ++i) {
                int const tag = p * per_producer + i;
                q.submit(pool, tag, [tag] { return tag * 2; });
            }
        });
    for (int c = 0; c < consumers; ++c)
        threads.emplace_back([&] {
            while (taken.load() < total) {
                // pop_for: a consumer may find the queue empty before the producers started.
                auto e = q.pop_for(10ms);
                if (!e) continue;
                EXPECT_EQ(e->future.result(), e->tag * 2);
                seen[static_cast<std::size_t>(e->tag)].fetch_add(1);
                taken.fetch_add(1);
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(taken.load(), total);
    for (int i = 0; i < total; ++i)
        ASSERT_EQ(seen[static_cast<std::size_t>(i)].load(), 1) << "tag " << i;
    EXPECT_TRUE(q.empty());
}

// Futures of several pools in one queue.
TEST(CompletionQueue, FuturesFromSeveralPools) {
    muster::thread_pool p1({.max_workers = 1});
    muster::thread_pool p2({.max_workers = 1});
    muster::completion_queue<int, int> q;
    for (int i = 0; i < 10; ++i) q.submit(i % 2 ? p1 : p2, i, [i] { return i; });
    std::vector<int> tags;
    for (int i = 0; i < 10; ++i) tags.push_back(q.pop().tag);
    std::sort(tags.begin(), tags.end());
    EXPECT_EQ(tags, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

// pop() inside a task of a one-worker pool, over tasks queued to the same pool, completes (the
// waiting worker runs them)
TEST(CompletionQueue, PopOnAWorkerRunsTheAwaitedTasks) {
    muster::thread_pool pool({.max_workers = 1});
    auto outer = pool.submit([&pool] {
        muster::completion_queue<int> q;
        for (std::size_t i = 0; i < 5; ++i) q.submit(pool, i, [i] { return static_cast<int>(i); });
        int sum = q.wait_for_tag(4).result();
        for (int i = 0; i < 4; ++i) sum += q.pop().future.result();
        q.wait_all();
        return sum;
    });
    EXPECT_EQ(outer.result(), 10);
}

}  // namespace
