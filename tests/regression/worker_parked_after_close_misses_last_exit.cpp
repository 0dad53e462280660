// Regression: after the pool broke, an idle worker slept until keep_alive (60 s by default)
// although no other worker was left, so the pool's destructor waited that long.
//
// L3 (docs/design/scheduler.md): once the pool is closed or broken, an idle worker leaves when no
// other worker is active; while another one is (running a task, or in its initializer), it parks.
// Cause: a worker whose initializer throws leaves through worker_exit_locked, not through park(),
// and break_pool wakes the idle workers only for the first failure. A worker that parked while
// such a worker was still in its initializer was never told that it had become the last one.
//
// Here three workers start: the first runs a held task; the second's initializer throws (the
// pool breaks); the third's initializer waits until the first worker, done with its task, has
// parked, and then throws too. With keep_alive at 10 minutes, the bug hangs this test past its
// timeout; fixed, the last worker wakes at the third's exit and leaves.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <muster/muster.hpp>
#include <stdexcept>
#include <thread>

TEST(WorkerParkedAfterCloseMissesLastExit, LastIdleWorkerLeavesWhenAFailingInitializerExits) {
    using namespace std::chrono_literals;
    std::atomic<int> arrivals{0};
    std::latch third_started(1);
    std::latch first_parked(1);
    std::atomic<int> reported{0};
    muster::thread_pool pool(
        {.max_workers = 3,
         .keep_alive = std::chrono::minutes(10),
         .initializer =
             [&] {
                 // Roles by arrival order: the threads of workers 2 and 3 may start in any order.
                 int const n = arrivals.fetch_add(1);
                 if (n == 1) {
                     third_started.wait();
                     throw std::runtime_error("second worker cannot start");
                 }
                 if (n == 2) {
                     third_started.count_down();
                     first_parked.wait();
                     throw std::runtime_error("third worker cannot start");
                 }
             },
         .on_unhandled_exception = [&](std::exception_ptr) { reported.fetch_add(1); }});
    std::latch started(1), release(1);
    auto held = pool.submit([&] {
        started.count_down();
        release.wait();
        return 1;
    });
    started.wait();
    auto b = pool.submit([] { return 2; });  // no idle worker: starts the second
    auto c = pool.submit([] { return 3; });  // still none: starts the third
    EXPECT_THROW(b.result(), muster::broken_pool);
    EXPECT_THROW(c.result(), muster::broken_pool);
    release.count_down();
    EXPECT_EQ(held.result(), 1);
    // The first worker parks: the third is still in its initializer, so it is not the last.
    while (pool.stats().idle != 1) std::this_thread::yield();
    first_parked.count_down();
    // Fixed: the third's exit wakes the first, which leaves. Broken: it sleeps for 10 minutes.
    while (pool.stats().workers != 0) std::this_thread::yield();
    EXPECT_EQ(reported.load(), 1);  // the first cause is reported; the pool was already broken
}
