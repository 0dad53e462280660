// Regression: a posted (fire-and-forget) task that throws is counted in stats().completed, not in
// stats().failed.
//
// pool_stats::failed is documented as "tasks that threw". Cause: thread_pool::post
// (include/muster/thread_pool.hpp) wraps the callable in a lambda that catches the exception and
// hands it to report_unhandled (which works), then returns normally; the task block's phase is
// therefore st_value, and pool_core::run_task / run_inline (src/scheduler/pool_core.cpp) count it
// in `completed`.
//
// Python reference: item 21 (an exception never kills the worker) and the rule that a
// fire-and-forget task's exception is never silent; the counters are muster's own.

#include <gtest/gtest.h>

#include <atomic>
#include <exception>
#include <muster/muster.hpp>
#include <stdexcept>

#include "pool_test_support.hpp"

TEST(PostExceptionCountedAsCompleted, ThrowingPostIsCountedAsFailed) {
    std::atomic<int> reported{0};
    muster::thread_pool pool({.max_workers = 1, .on_unhandled_exception = [&](std::exception_ptr) {
                                  reported.fetch_add(1);
                              }});
    pool.post([] { throw std::runtime_error("posted"); });
    pool.post([] {});
    pool.wait_idle();
    EXPECT_EQ(reported.load(), 1);
    auto const s = pool.stats();
    EXPECT_EQ(s.failed, 1u) << "a posted task that threw must count as failed";
    EXPECT_EQ(s.completed, 1u) << "only the posted task that returned normally completed";
}

// The same on the caller_runs path (the task runs on the submitting thread).
TEST(PostExceptionCountedAsCompleted, ThrowingPostRunInlineIsCountedAsFailed) {
    muster::thread_pool pool({.max_workers = 1,
                              .on_unhandled_exception = [](std::exception_ptr) {},
                              .queue_capacity = 1,
                              .overflow = muster::overflow_policy::caller_runs});
    {
        muster_test::worker_hold hold(pool);
        pool.post([] {});                                       // queued
        pool.post([] { throw std::runtime_error("inline"); });  // runs on this thread
    }
    pool.wait_idle();
    auto const s = pool.stats();
    EXPECT_EQ(s.failed, 1u);
    EXPECT_EQ(s.completed, 2u);  // the holding task and the queued post
}
