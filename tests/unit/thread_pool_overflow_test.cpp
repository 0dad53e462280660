// thread_pool bounded queue: queue_capacity with each overflow policy.
//
// Python has no bounded executor queue (its queue is unbounded; see item 99 for the related
// "submit must never block forever" rule). These tests pin muster's documented policies: reject,
// block (with and without block_timeout), caller_runs and discard_oldest, and the rule that a
// worker never blocks on its own pool's full queue.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <latch>
#include <muster/muster.hpp>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pool_test_support.hpp"

using namespace std::chrono_literals;
using muster_test::lifetime_counts;
using muster_test::poll_until;
using muster_test::tracked;
using muster_test::worker_hold;

// reject: a submit into a full queue throws queue_full_error at once; the refused callable is
// destroyed and never runs; tasks already queued are unaffected and room comes back later.
TEST(ThreadPoolOverflow, RejectThrowsQueueFullError) {
    lifetime_counts c;
    muster::thread_pool pool(
        {.max_workers = 1, .queue_capacity = 2, .overflow = muster::overflow_policy::reject});
    worker_hold hold(pool);  // running, so no longer queued
    auto a = pool.submit([] { return 1; });
    auto b = pool.submit([] { return 2; });
    EXPECT_EQ(pool.stats().queued, 2u);
    std::atomic<bool> ran{false};
    try {
        (void)pool.submit([&ran, t = tracked(c, 0)] {
            ran = true;
            return t.value();
        });
        FAIL() << "expected queue_full_error";
    } catch (const muster::queue_full_error& e) {
        EXPECT_NE(std::string(e.what()).find("queue_capacity"), std::string::npos) << e.what();
    }
    EXPECT_EQ(c.alive(), 0);
    EXPECT_THROW(pool.post([] {}), muster::queue_full_error);
    hold.release();
    EXPECT_EQ(a.result(), 1);
    EXPECT_EQ(b.result(), 2);
    pool.wait_idle();
    EXPECT_FALSE(ran.load());
    EXPECT_EQ(pool.submit([] { return 3; }).result(), 3);
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// block: a producer submitting into a full queue stays blocked while the worker is held, then
// proceeds once the worker frees space, and its task runs.
TEST(ThreadPoolOverflow, BlockWaitsForRoomThenProceeds) {
    muster::thread_pool pool(
        {.max_workers = 1, .queue_capacity = 1, .overflow = muster::overflow_policy::block});
    worker_hold hold(pool);
    auto a = pool.submit([] { return 1; });  // fills the queue
    std::latch entering(1);
    std::atomic<bool> returned{false};
    std::optional<muster::future<int>> b;
    std::thread producer([&] {
        entering.count_down();
        b = pool.submit([] { return 2; });
        returned = true;
    });
    entering.wait();
    // While the worker is held the queue stays full, so the producer cannot return.
    bool const returned_early = poll_until([&] { return returned.load(); }, 100ms);
    EXPECT_FALSE(returned_early);
    hold.release();
    producer.join();
    EXPECT_TRUE(returned.load());
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(a.result(), 1);
    EXPECT_EQ(b->result(), 2);
}

// block with block_timeout: if the queue stays full for the timeout, submit throws
// queue_full_error (and the task never runs).
TEST(ThreadPoolOverflow, BlockTimeoutThrowsQueueFullError) {
    muster::thread_pool pool({.max_workers = 1,
                              .queue_capacity = 1,
                              .overflow = muster::overflow_policy::block,
                              .block_timeout = 20ms});
    worker_hold hold(pool);
    auto a = pool.submit([] { return 1; });
    std::atomic<bool> ran{false};
    try {
        (void)pool.submit([&ran] { ran = true; });
        FAIL() << "expected queue_full_error";
    } catch (const muster::queue_full_error& e) {
        EXPECT_NE(std::string(e.what()).find("block_timeout"), std::string::npos) << e.what();
    }
    hold.release();
    EXPECT_EQ(a.result(), 1);
    pool.wait_idle();
    EXPECT_FALSE(ran.load());
}

// block: a producer blocked on a full queue is released by shutdown with shutdown_error (it
// must not stay blocked forever, compare item 99), and the queued task still runs.
TEST(ThreadPoolOverflow, ShutdownReleasesBlockedProducerWithShutdownError) {
    muster::thread_pool pool(
        {.max_workers = 1, .queue_capacity = 1, .overflow = muster::overflow_policy::block});
    worker_hold hold(pool);
    auto a = pool.submit([] { return 1; });
    std::atomic<bool> threw_shutdown{false};
    std::atomic<bool> ran{false};
    std::latch entering(1);
    std::thread producer([&] {
        entering.count_down();
        try {
            (void)pool.submit([&ran] { ran = true; });
        } catch (const muster::shutdown_error&) {
            threw_shutdown = true;
        }
    });
    entering.wait();
    bool const returned_early = poll_until([&] { return threw_shutdown.load(); }, 50ms);
    EXPECT_FALSE(returned_early);
    pool.shutdown({.wait = false});
    producer.join();
    EXPECT_TRUE(threw_shutdown.load());
    hold.release();
    EXPECT_EQ(a.result(), 1);
    pool.shutdown();
    EXPECT_FALSE(ran.load());
}

// caller_runs: with the queue full, the task runs on the submitting thread before submit
// returns; posted tasks too, and their exceptions go to the handler on that thread.
TEST(ThreadPoolOverflow, CallerRunsRunsOnTheSubmittingThread) {
    std::mutex mu;
    std::vector<std::thread::id> handler_threads;
    muster::thread_pool pool({.max_workers = 1,
                              .on_unhandled_exception =
                                  [&](std::exception_ptr) {
                                      std::lock_guard lock(mu);
                                      handler_threads.push_back(std::this_thread::get_id());
                                  },
                              .queue_capacity = 1,
                              .overflow = muster::overflow_policy::caller_runs});
    worker_hold hold(pool);
    auto a = pool.submit([] { return std::this_thread::get_id(); });  // queued
    auto b = pool.submit([] { return std::this_thread::get_id(); });  // no room: runs here
    EXPECT_TRUE(b.done());
    EXPECT_EQ(b.result(), std::this_thread::get_id());
    pool.post([] { throw std::runtime_error("inline post"); });
    {
        std::lock_guard lock(mu);
        ASSERT_EQ(handler_threads.size(), 1u);
        EXPECT_EQ(handler_threads[0], std::this_thread::get_id());
    }
    hold.release();
    EXPECT_EQ(a.result(), hold.thread());
    EXPECT_NE(a.result(), std::this_thread::get_id());
}

// discard_oldest: with the queue full, the oldest queued task is cancelled (its future reports
// cancelled, its callable is destroyed unrun) and the new one is queued and runs.
TEST(ThreadPoolOverflow, DiscardOldestCancelsTheOldestQueuedTask) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 1,
                              .queue_capacity = 2,
                              .overflow = muster::overflow_policy::discard_oldest});
    worker_hold hold(pool);
    std::mutex mu;
    std::vector<int> order;
    auto record = [&](int i) {
        std::lock_guard lock(mu);
        order.push_back(i);
        return i;
    };
    auto oldest = pool.submit([record, t = tracked(c, 1)] { return record(t.value()); });
    auto second = pool.submit([record] { return record(2); });
    auto newest = pool.submit([record] { return record(3); });
    EXPECT_TRUE(oldest.cancelled());
    EXPECT_THROW(oldest.result(), muster::cancelled_error);
    EXPECT_EQ(c.alive(), 0);
    EXPECT_FALSE(second.done());
    hold.release();
    EXPECT_EQ(second.result(), 2);
    EXPECT_EQ(newest.result(), 3);
    std::lock_guard lock(mu);
    EXPECT_EQ(order, (std::vector<int>{2, 3}));
}

// block: a submit from one of the pool's own workers into its full queue never blocks (every
// worker could wait for room only workers make): it runs the task inline on that worker.
TEST(ThreadPoolOverflow, BlockingSubmitFromAWorkerRunsInlineWithoutDeadlock) {
    muster::thread_pool pool(
        {.max_workers = 1, .queue_capacity = 1, .overflow = muster::overflow_policy::block});
    auto outer = pool.submit([&pool] {
        auto queued = pool.submit([] { return 20; });  // takes the only slot
        auto inline_run = pool.submit([] { return std::this_thread::get_id(); });
        bool const ran_inline =
            inline_run.done() && inline_run.result() == std::this_thread::get_id();
        return std::pair(ran_inline, queued.result() + 22);
    });
    auto const [ran_inline, sum] = outer.result();
    EXPECT_TRUE(ran_inline);
    EXPECT_EQ(sum, 42);
}

// The capacity counts queued tasks only: after the queue drains it accepts a full load again,
// and the queued counter returns to zero.
TEST(ThreadPoolOverflow, CapacityIsRestoredAsTasksAreTaken) {
    muster::thread_pool pool(
        {.max_workers = 1, .queue_capacity = 3, .overflow = muster::overflow_policy::reject});
    for (int round = 0; round < 5; ++round) {
        worker_hold hold(pool);
        std::vector<muster::future<int>> fs;
        for (int i = 0; i < 3; ++i) fs.push_back(pool.submit([i] { return i; }));
        EXPECT_THROW((void)pool.submit([] { return -1; }), muster::queue_full_error);
        hold.release();
        for (int i = 0; i < 3; ++i) EXPECT_EQ(fs[i].result(), i);
        pool.wait_idle();
        EXPECT_EQ(pool.stats().queued, 0u);
    }
}
