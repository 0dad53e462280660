// Regression: dropping a map range after a step (begin() or ++it) but before reading the element
// does not cancel that element's task: it still runs, although "dropping the range cancels the
// tasks not yet started".
//
// Cause (include/muster/map.hpp): map_range::advance() moves the element it steps to out of
// inflight_ into map_base::front_, and ~map_range() calls only cancel_rest(), which cancels
// inflight_; front_ is released without cancel(), so its task still runs.
//
// Python reference: item 54 (dropping the iterator cancels the not-started remaining tasks),
// W4 (make the drop rule explicit and deterministic).

#include <gtest/gtest.h>

#include <atomic>
#include <muster/muster.hpp>
#include <optional>
#include <ranges>

#include "pool_test_support.hpp"

TEST(MapDropAfterStepRunsPendingFrontElement, DropAfterBeginCancelsEverything_Item54) {
    muster::thread_pool pool({.max_workers = 1});
    std::atomic<int> executed{0};
    {
        muster_test::worker_hold hold(pool);  // nothing of the map can start
        auto r = pool.map(
            [&](int x) {
                executed.fetch_add(1);
                return x;
            },
            std::views::iota(0, 10), {.buffersize = 3});
        (void)r.begin();  // steps to element 0 without waiting for it
    }
    pool.wait_idle();
    EXPECT_EQ(executed.load(), 0);
    EXPECT_EQ(pool.stats().cancelled, 4u);  // elements 0..3
}

TEST(MapDropAfterStepRunsPendingFrontElement, BreakAfterIncrementCancelsTheNextElement_Item54) {
    muster::thread_pool pool({.max_workers = 1});
    std::atomic<int> executed{0};
    std::optional<muster_test::worker_hold> hold;
    {
        auto r = pool.map(
            [&](int x) {
                executed.fetch_add(1);
                return x;
            },
            std::views::iota(0, 10), {.buffersize = 2});
        auto it = r.begin();
        EXPECT_EQ(*it, 0);
        pool.wait_idle();    // elements 0..2 have run
        hold.emplace(pool);  // nothing submitted from now on can start
        ++it;                // steps to element 1 (done) and submits element 3
        EXPECT_EQ(*it, 1);
        ++it;  // steps to element 2 (done) and submits element 4
        ++it;  // steps to element 3 (pending) and submits element 5
    }          // dropped: 3, 4 and 5 must be cancelled
    hold.reset();
    pool.wait_idle();
    EXPECT_EQ(executed.load(), 3);
    EXPECT_EQ(pool.stats().cancelled, 3u);
}
