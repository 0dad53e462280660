// thread_pool::map_unordered: completion order, every element once, map's input discipline.
//
// Python reference items: 28 (every input yielded exactly once), 29 (completion order), 50 and
// W5 (per-element exceptions, iteration continues), 52 (deadline), 54 (dropping cancels), 58
// (buffersize validation, in the options test), 59 (lazy input), 61 and W6 (no silent
// truncation), 108 (imap_unordered yields in completion order).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <muster/muster.hpp>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool_test_support.hpp"

using namespace std::chrono_literals;
using muster_test::lifetime_counts;
using muster_test::poll_until;
using muster_test::tracked;
using muster_test::worker_hold;

// Items 29, 108: results come in completion order. Each task waits for its own gate and the test
// opens one gate per step, so exactly one task can complete before each step.
TEST(MapUnordered, YieldsInCompletionOrder_Item29_Item108) {
    constexpr int n = 4;
    muster::thread_pool pool({.max_workers = n});
    std::vector<std::unique_ptr<std::latch>> gates;
    for (int i = 0; i < n; ++i) gates.push_back(std::make_unique<std::latch>(1));
    auto r = pool.map_unordered(
        [&](int i) {
            gates[static_cast<std::size_t>(i)]->wait();
            return i;
        },
        std::views::iota(0, n), {.buffersize = n});
    std::vector<int> const release_order{2, 0, 3, 1};
    std::vector<int> got;
    gates[2]->count_down();
    auto it = r.begin();
    for (std::size_t k = 0;; ++k) {
        ASSERT_FALSE(it == r.end());
        got.push_back(*it);
        if (k + 1 == release_order.size()) break;
        gates[static_cast<std::size_t>(release_order[k + 1])]->count_down();
        ++it;
    }
    ++it;
    EXPECT_TRUE(it == r.end());
    EXPECT_EQ(got, release_order);
}

// Item 28: every element is yielded exactly once, for a long input with a small buffer.
TEST(MapUnordered, YieldsEveryElementOnce_Item28) {
    muster::thread_pool pool({.max_workers = 2});
    std::multiset<int> seen;
    for (int v : pool.map_unordered([](int x) { return x * x; }, std::views::iota(0, 2000),
                                    {.buffersize = 7}))
        seen.insert(v);
    ASSERT_EQ(seen.size(), 2000u);
    for (int i = 0; i < 2000; ++i) EXPECT_EQ(seen.count(i * i), 1u) << i;
}

// An empty input gives an empty range.
TEST(MapUnordered, EmptyInputGivesEmptyRange) {
    muster::thread_pool pool({.max_workers = 1});
    std::vector<int> none;
    auto r = pool.map_unordered([](int x) { return x; }, none);
    EXPECT_TRUE(r.begin() == r.end());
}

// Item 59: the input is pulled lazily, min(b, n) at the call and one more per step.
TEST(MapUnordered, PullsLazily_Item59) {
    muster::thread_pool pool({.max_workers = 2});
    std::atomic<int> pulled{0};
    auto input = std::views::iota(0, 30) | std::views::transform([&pulled](int i) {
                     pulled.fetch_add(1);
                     return i;
                 });
    auto r = pool.map_unordered([](int x) { return x; }, input, {.buffersize = 3});
    EXPECT_EQ(pulled.load(), 3);
    int consumed = 0;
    for (auto it = r.begin(); it != r.end(); ++it) {
        ++consumed;
        EXPECT_EQ(pulled.load(), std::min(30, consumed + 3));
    }
    EXPECT_EQ(consumed, 30);
}

// Items 50, W5: a failing element rethrows when it is yielded and iteration goes on; every other
// element is still delivered.
TEST(MapUnordered, ExceptionsArePerElement_Item50_W5) {
    muster::thread_pool pool({.max_workers = 2});
    auto r = pool.map_unordered(
        [](int x) {
            if (x % 5 == 0) throw std::invalid_argument(std::to_string(x));
            return x;
        },
        std::views::iota(0, 20));
    std::set<int> ok;
    std::set<std::string> failed;
    for (auto it = r.begin(); it != r.end(); ++it) {
        try {
            ok.insert(*it);
        } catch (const std::invalid_argument& e) {
            failed.insert(e.what());
        }
    }
    EXPECT_EQ(ok.size(), 16u);
    EXPECT_EQ(failed, (std::set<std::string>{"0", "5", "10", "15"}));
}

// Item 52: at the deadline the step throws timeout_error, the pending tasks are cancelled and the
// iteration ends.
TEST(MapUnordered, DeadlineCancelsPendingAndEnds_Item52) {
    muster::thread_pool pool({.max_workers = 1});
    std::latch gate(1);
    std::atomic<int> executed{0};
    std::optional<worker_hold> hold(std::in_place, pool);
    auto r = pool.map_unordered(
        [&](int x) {
            executed.fetch_add(1);
            if (x == 0) gate.wait();
            return x;
        },
        std::views::iota(0, 4), {.buffersize = 4, .timeout = 20ms});
    hold.reset();  // the worker takes the four tasks as one batch and starts with element 0
    EXPECT_THROW((void)r.begin(), muster::timeout_error);
    EXPECT_TRUE(r.begin() == r.end());  // the iteration has ended
    gate.count_down();
    pool.wait_idle();
    EXPECT_EQ(executed.load(), 1);  // elements 1..3 were cancelled
    EXPECT_EQ(pool.stats().cancelled, 3u);
}

// Item 54: dropping the range cancels the tasks that have not started.
TEST(MapUnordered, DroppingTheRangeCancelsPendingTasks_Item54) {
    muster::thread_pool pool({.max_workers = 1});
    std::atomic<int> executed{0};
    {
        worker_hold hold(pool);
        auto r = pool.map_unordered(
            [&](int x) {
                executed.fetch_add(1);
                return x;
            },
            std::views::iota(0, 10), {.buffersize = 4});
    }
    pool.wait_idle();
    EXPECT_EQ(executed.load(), 0);
    EXPECT_EQ(pool.stats().cancelled, 4u);
}

// Results are never copied and each is destroyed exactly once.
TEST(MapUnordered, ResultsAreNotCopied) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 2});
    {
        int sum = 0;
        for (auto& t :
             pool.map_unordered([&c](int x) { return tracked(c, x); }, std::views::iota(0, 40)))
            sum += t.value();
        EXPECT_EQ(sum, 780);
    }
    pool.wait_idle();
    EXPECT_EQ(c.copies.load(), 0);
    EXPECT_EQ(c.alive(), 0);
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// Items 61, W6: on a shut-down pool map_unordered throws shutdown_error; a range that must refill
// after shutdown throws instead of ending early.
TEST(MapUnordered, ShutdownIsNeverSilent_W6) {
    muster::thread_pool pool({.max_workers = 1});
    auto r =
        pool.map_unordered([](int x) { return x; }, std::views::iota(0, 10), {.buffersize = 2});
    pool.shutdown();
    std::size_t got = 0;
    EXPECT_THROW(
        {
            for (int v : r) {
                (void)v;
                ++got;
            }
        },
        muster::shutdown_error);
    EXPECT_LT(got, 10u);
    EXPECT_THROW((void)pool.map_unordered([](int x) { return x; }, std::views::iota(0, 3)),
                 muster::shutdown_error);
}
