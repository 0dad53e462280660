// thread_pool wait_idle, stats, and helping waits (deadlock freedom inside the pool).
//
// Python reference items: 38 (no lost completions under concurrent completion; here for the
// pool's own counters), 66 (all futures hold outcomes once the pool is quiet), 76 (parallelism
// proven with a peak counter); DESIGN §4 "Waiting inside the pool helps".

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <future>
#include <latch>
#include <muster/muster.hpp>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "pool_test_support.hpp"

using muster_test::concurrency_meter;
using muster_test::worker_hold;

// ---- wait_idle ---------------------------------------------------------------------------------

// wait_idle on a pool that never ran anything returns at once.
TEST(ThreadPoolWaitIdle, OnAnUnusedPoolReturnsAtOnce) {
    muster::thread_pool pool({.max_workers = 2});
    pool.wait_idle();
    EXPECT_EQ(pool.stats().workers, 0u);
}

// After many tasks, wait_idle returns with every one of them done; parallel tasks ran on
// several workers at once (peak counter).
TEST(ThreadPoolWaitIdle, ReturnsWithAllTasksDone) {
    muster::thread_pool pool({.max_workers = 2});
    concurrency_meter meter;
    std::atomic<int> ran{0};
    std::barrier meet(2);
    std::vector<muster::future<void>> fs;
    for (int i = 0; i < 2; ++i)
        fs.push_back(pool.submit([&] {
            auto in = meter.enter();
            meet.arrive_and_wait();  // both workers inside at once
            ran.fetch_add(1);
        }));
    for (int i = 0; i < 2000; ++i)
        fs.push_back(pool.submit([&] {
            auto in = meter.enter();
            ran.fetch_add(1);
        }));
    pool.wait_idle();
    EXPECT_EQ(ran.load(), 2002);
    for (auto& f : fs) EXPECT_TRUE(f.done());
    EXPECT_EQ(meter.peak(), 2);
    auto const s = pool.stats();
    EXPECT_EQ(s.queued, 0u);
    EXPECT_EQ(s.running, 0u);
}

// Several outside threads in wait_idle at once all return when the pool is quiet.
TEST(ThreadPoolWaitIdle, ConcurrentOutsideWaitersAllReturn) {
    muster::thread_pool pool({.max_workers = 2});
    std::latch gate(1);
    std::atomic<int> ran{0};
    for (int i = 0; i < 100; ++i)
        pool.post([&, i] {
            if (i == 0) gate.wait();
            ran.fetch_add(1);
        });
    std::vector<std::thread> waiters;
    std::atomic<int> returned{0};
    for (int t = 0; t < 3; ++t)
        waiters.emplace_back([&] {
            pool.wait_idle();
            if (ran.load() == 100) returned.fetch_add(1);
        });
    gate.count_down();
    for (auto& t : waiters) t.join();
    EXPECT_EQ(returned.load(), 3);
}

// From inside a task, wait_idle returns when everything but the calling task is done: here the
// children it submitted and the tasks submitted from outside.
TEST(ThreadPoolWaitIdle, FromInsideATaskWaitsForEverythingElse) {
    for (std::size_t workers : {1u, 2u}) {
        muster::thread_pool pool({.max_workers = workers});
        std::atomic<int> children{0};
        std::atomic<int> outside{0};
        std::latch outside_queued(1);
        auto parent = pool.submit([&] {
            outside_queued.wait();
            for (int i = 0; i < 50; ++i) pool.post([&] { children.fetch_add(1); });
            pool.wait_idle();
            return std::pair(children.load(), outside.load());
        });
        for (int i = 0; i < 20; ++i) pool.post([&] { outside.fetch_add(1); });
        outside_queued.count_down();
        auto const [c, o] = parent.result();
        EXPECT_EQ(c, 50) << workers << " workers";
        EXPECT_EQ(o, 20) << workers << " workers";
    }
}

// Nested wait_idle in several tasks at once (each task forks children and waits for the pool to
// go quiet) completes on one and on two workers.
TEST(ThreadPoolWaitIdle, NestedWaitIdleInsideTasksCompletes) {
    for (std::size_t workers : {1u, 2u}) {
        muster::thread_pool pool({.max_workers = workers});
        std::atomic<int> leaves{0};
        std::vector<muster::future<void>> fs;
        for (int t = 0; t < 4; ++t)
            fs.push_back(pool.submit([&] {
                for (int i = 0; i < 10; ++i)
                    pool.post([&] {
                        pool.post([&] { leaves.fetch_add(1); });
                        pool.wait_idle();
                    });
                pool.wait_idle();
            }));
        for (auto& f : fs) f.result();
        pool.wait_idle();
        EXPECT_EQ(leaves.load(), 40) << workers << " workers";
    }
}

// ---- stats
// ---------------------------------------------------------------------------------------

// After wait_idle the counters are exact: completed, failed and cancelled each count their own
// tasks once.
TEST(ThreadPoolStats, CountsAreExactAfterWaitIdle) {
    muster::thread_pool pool({.max_workers = 1});
    std::vector<muster::future<int>> cancelled;
    {
        worker_hold hold(pool);
        for (int i = 0; i < 5; ++i) cancelled.push_back(pool.submit([i] { return i; }));
        for (auto& f : cancelled) EXPECT_TRUE(f.cancel());
        for (int i = 0; i < 50; ++i) pool.post([] {});
        for (int i = 0; i < 10; ++i)
            (void)pool.submit([]() -> int { throw std::runtime_error("x"); });
        EXPECT_EQ(pool.stats().running, 1u);
    }
    pool.wait_idle();
    auto const s = pool.stats();
    EXPECT_EQ(s.completed, 51u);  // 50 posts and the holding task
    EXPECT_EQ(s.failed, 10u);
    EXPECT_EQ(s.cancelled, 5u);
    EXPECT_EQ(s.running, 0u);
    EXPECT_EQ(s.queued, 0u);
    EXPECT_EQ(s.workers, 1u);
    EXPECT_EQ(s.idle, 1u);
}

// The counters add up over several workers and outside-submitted, inside-submitted and
// pool-cancelled tasks.
TEST(ThreadPoolStats, CountsAddUpAcrossWorkersAndCancellation) {
    muster::thread_pool pool({.max_workers = 2});
    std::atomic<int> ok{0};
    {
        worker_hold h1(pool);
        worker_hold h2(pool);
        std::vector<muster::future<void>> fs;
        for (int i = 0; i < 30; ++i)
            fs.push_back(pool.submit([&pool, &ok] {
                ok.fetch_add(1);
                pool.post([&ok] { ok.fetch_add(1); });
            }));
        for (int i = 0; i < 30; i += 3) fs[static_cast<std::size_t>(i)].cancel();  // 10 cancelled
    }
    pool.wait_idle();
    auto const s = pool.stats();
    EXPECT_EQ(ok.load(), 40);  // 20 parents ran, each posted one child
    EXPECT_EQ(s.completed, 2u + 20u + 20u);
    EXPECT_EQ(s.cancelled, 10u);
    EXPECT_EQ(s.failed, 0u);
}

// ---- helping waits ------------------------------------------------------------------------------

namespace {
int fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

int fib(muster::thread_pool& pool, int n, int cutoff) {
    if (n < cutoff) return fib_serial(n);
    auto left = pool.submit([&pool, n, cutoff] { return fib(pool, n - 1, cutoff); });
    int const right = fib(pool, n - 2, cutoff);
    return left.result() + right;  // a wait inside the pool: helps instead of blocking
}
}  // namespace

class ThreadPoolForkJoin : public testing::TestWithParam<std::tuple<std::size_t, int>> {};

// Recursive fork-join never deadlocks, even on one worker: waits inside the pool run other
// tasks.
TEST_P(ThreadPoolForkJoin, FibCompletes) {
    auto const [workers, n] = GetParam();
    muster::thread_pool pool({.max_workers = workers});
    auto f = pool.submit([&pool, n = n] { return fib(pool, n, 12); });
    EXPECT_EQ(f.result(), fib_serial(n));
    pool.wait_idle();
    EXPECT_EQ(pool.stats().failed, 0u);
}

INSTANTIATE_TEST_SUITE_P(WorkersAndDepth, ThreadPoolForkJoin,
                         testing::Combine(testing::Values(std::size_t{1}, std::size_t{2}),
                                          testing::Values(20, 22, 25)));

// A task waiting on the future of a task submitted after it, on a one-worker pool, completes:
// the wait runs the later task on the same worker.
TEST(ThreadPoolHelping, TaskWaitsOnALaterTaskOnOneWorker) {
    muster::thread_pool pool({.max_workers = 1});
    std::promise<muster::future<int>> later_promise;
    auto later_future = later_promise.get_future();
    auto first = pool.submit([&] {
        muster::future<int> later = later_future.get();
        return later.result() + 1;
    });
    auto later = pool.submit([] { return 41; });
    later_promise.set_value(later);
    EXPECT_EQ(first.result(), 42);
    EXPECT_EQ(later.result(), 41);
    EXPECT_EQ(pool.stats().workers, 1u);
}

// A chain of tasks on one worker, each waiting for the next one (submitted from inside), ends.
TEST(ThreadPoolHelping, DeepChainOfInnerWaitsOnOneWorker) {
    muster::thread_pool pool({.max_workers = 1});
    struct chain {
        static int run(muster::thread_pool& pool, int depth) {
            if (depth == 0) return 0;
            return pool.submit([&pool, depth] { return run(pool, depth - 1); }).result() + 1;
        }
    };
    auto f = pool.submit([&pool] { return chain::run(pool, 200); });
    EXPECT_EQ(f.result(), 200);
}

// A task waiting on a future that another worker is blocked on finishes once that worker is
// released; the waiting worker keeps serving other tasks meanwhile.
TEST(ThreadPoolHelping, WaitingWorkerServesOtherTasks) {
    muster::thread_pool pool({.max_workers = 2});
    std::latch gate(1);
    std::latch blocker_started(1);
    auto blocker = pool.submit([&] {
        blocker_started.count_down();
        gate.wait();
        return 1;
    });
    blocker_started.wait();
    auto waiter = pool.submit([&] { return blocker.result() + 1; });
    ASSERT_TRUE(muster_test::poll_until([&] { return waiter.running(); }));
    // Only the waiting worker is free; these tasks can complete only through its helping.
    std::vector<muster::future<int>> others;
    for (int i = 0; i < 20; ++i) others.push_back(pool.submit([i] { return i; }));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(others[i].result(), i);
    gate.count_down();
    EXPECT_EQ(waiter.result(), 2);
}
