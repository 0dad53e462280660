// parallel_for, submit_bulk and post_bulk (the bulk API of thread_pool).
#include <gtest/gtest.h>
#include <muster/muster.hpp>

#include <atomic>
#include <latch>
#include <thread>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <vector>

namespace {

TEST(ParallelFor, EveryIndexRunsExactlyOncePerIndexBody) {
    muster::thread_pool pool({.max_workers = 2});
    std::vector<std::atomic<int>> hits(10007);
    muster::parallel_for(pool, 0, 10007, [&](int i) { hits[static_cast<std::size_t>(i)]++; });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
}

TEST(ParallelFor, ChunkBodyCoversTheRangeWithTheGivenGrain) {
    muster::thread_pool pool({.max_workers = 3});
    std::vector<std::atomic<int>> hits(1000);
    std::atomic<int> chunks{0};
    muster::parallel_for(
        pool, std::size_t{0}, std::size_t{1000},
        [&](std::size_t b, std::size_t e) {
            EXPECT_LE(e - b, 7u);
            ++chunks;
            for (auto i = b; i < e; ++i) hits[i]++;
        },
        {.grain = 7});
    EXPECT_EQ(chunks.load(), (1000 + 6) / 7);
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
}

// P2: a participant whose share is stuck behind one long chunk gives up the rest of it. The
// helper's first chunk blocks until every other index is done, so the caller must steal the
// remainder of the helper's share (without stealing, this never finishes).
TEST(ParallelFor, BlockedParticipantsShareIsStolen) {
    muster::thread_pool pool({.max_workers = 2});
    constexpr int n = 1000;
    auto const caller = std::this_thread::get_id();
    std::latch helper_started(1);
    std::atomic<int> finished{0};
    std::atomic<bool> caller_waited{false}, helper_blocked{false};
    muster::parallel_for(
        pool, 0, n,
        [&](int) {
            if (std::this_thread::get_id() == caller) {
                if (!caller_waited.exchange(true)) helper_started.wait();
            } else if (!helper_blocked.exchange(true)) {
                helper_started.count_down();
                while (finished.load() != n - 1) std::this_thread::yield();
            }
            ++finished;
        },
        {.grain = 1});
    EXPECT_EQ(finished.load(), n);
}

// Many participants stealing from each other at the finest grain: each index still runs once.
TEST(ParallelFor, ExactlyOnceWithManyParticipantsStealing) {
    muster::thread_pool pool({.max_workers = 6});
    for (int round = 0; round < 40; ++round) {
        std::vector<std::atomic<int>> hits(3001);
        muster::parallel_for(pool, 0, 3001, [&](int i) { hits[static_cast<std::size_t>(i)]++; },
                             {.grain = 1});
        for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
}

TEST(ParallelFor, NegativeAndEmptyRanges) {
    muster::thread_pool pool({.max_workers = 2});
    std::atomic<int> sum{0};
    muster::parallel_for(pool, -50, 50, [&](int i) { sum += i; });
    EXPECT_EQ(sum.load(), -50);
    bool called = false;
    muster::parallel_for(pool, 5, 5, [&](int) { called = true; });
    muster::parallel_for(pool, 5, 1, [&](int) { called = true; });
    EXPECT_FALSE(called);
}

TEST(ParallelFor, GrainZeroIsInvalid) {
    muster::thread_pool pool({.max_workers = 2});
    EXPECT_THROW(muster::parallel_for(pool, 0, 10, [](int) {}, {.grain = 0}),
                 muster::invalid_argument);
}

TEST(ParallelFor, FirstExceptionIsRethrownAfterRunningChunksEnd) {
    muster::thread_pool pool({.max_workers = 2});
    std::atomic<int> ran{0};
    EXPECT_THROW(muster::parallel_for(
                     pool, 0, 1000,
                     [&](int i) {
                         ++ran;
                         if (i == 3) throw std::runtime_error("chunk failed");
                     },
                     {.grain = 1}),
                 std::runtime_error);
    EXPECT_GE(ran.load(), 1);
    EXPECT_LE(ran.load(), 1000);
    // The pool is still usable afterwards.
    EXPECT_EQ(pool.submit([] { return 7; }).result(), 7);
}

TEST(ParallelFor, InsideATaskOfAOneWorkerPoolCompletes) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([&pool] {
        std::atomic<long> sum{0};
        muster::parallel_for(pool, 0, 100, [&](int i) { sum += i; }, {.grain = 3});
        return sum.load();
    });
    EXPECT_EQ(f.result(), 4950);
}

TEST(ParallelFor, ShutDownPoolRunsEveryChunkOnTheCaller) {
    muster::thread_pool pool({.max_workers = 2});
    pool.shutdown();
    std::atomic<int> n{0};
    muster::parallel_for(pool, 0, 64, [&](int) { ++n; }, {.grain = 4});
    EXPECT_EQ(n.load(), 64);
}

TEST(ParallelFor, FullBoundedQueueDoesNotLeaveRunnersBehind) {
    // Runners refused by a full queue are replaced by the caller; runners queued before the
    // refusal must never touch the body after parallel_for returned (ASan would report it).
    muster::thread_pool pool({.max_workers = 4, .queue_capacity = 1,
                              .overflow = muster::overflow_policy::reject});
    for (int round = 0; round < 50; ++round) {
        auto counter = std::make_unique<std::atomic<int>>(0);
        muster::parallel_for(pool, 0, 256, [&](int) { ++*counter; }, {.grain = 1});
        EXPECT_EQ(counter->load(), 256);
    }
    pool.wait_idle();
}

TEST(Bulk, SubmitBulkReturnsFuturesInIndexOrder) {
    muster::thread_pool pool({.max_workers = 2});
    auto fs = pool.submit_bulk(500, [](std::size_t i) { return i * 3; });
    ASSERT_EQ(fs.size(), 500u);
    for (std::size_t i = 0; i < fs.size(); ++i) EXPECT_EQ(fs[i].result(), i * 3);
}

TEST(Bulk, PostBulkRunsEveryTaskAndReportsFailures) {
    std::atomic<int> reported{0};
    muster::thread_pool pool({.max_workers = 2,
                              .on_unhandled_exception = [&](std::exception_ptr) { ++reported; }});
    std::atomic<int> ran{0};
    pool.post_bulk(300, [&](std::size_t i) {
        ++ran;
        if (i % 100 == 0) throw std::runtime_error("posted failure");
    });
    pool.wait_idle();
    EXPECT_EQ(ran.load(), 300);
    EXPECT_EQ(reported.load(), 3);
    auto s = pool.stats();
    EXPECT_EQ(s.failed, 3u);
    EXPECT_EQ(s.completed, 297u);
}

TEST(Bulk, AfterShutdownThrowsAndQueuesNothing) {
    muster::thread_pool pool({.max_workers = 2});
    pool.shutdown();
    std::atomic<int> ran{0};
    EXPECT_THROW((void)pool.submit_bulk(10, [&](std::size_t) { return ++ran; }),
                 muster::shutdown_error);
    EXPECT_THROW(pool.post_bulk(10, [&](std::size_t) { ++ran; }), muster::shutdown_error);
    EXPECT_EQ(ran.load(), 0);
}

TEST(Bulk, BoundedQueueAppliesTheOverflowPolicyPerTask) {
    muster::thread_pool pool({.max_workers = 1, .queue_capacity = 4,
                              .overflow = muster::overflow_policy::caller_runs});
    auto fs = pool.submit_bulk(64, [](std::size_t i) { return static_cast<int>(i); });
    for (std::size_t i = 0; i < fs.size(); ++i) EXPECT_EQ(fs[i].result(), static_cast<int>(i));
}

}  // namespace
