// Regression: a task can stay in a busy worker's deque while another worker sleeps on the idle
// list, so tasks that must run at the same time (here three tasks meeting at a barrier, on a
// pool of three workers) never all start.
//
// Symptom (found by these tests): with max_workers = 3 and three warm workers, submitting three
// tasks that wait for each other sometimes hangs: stats() shows workers = 3, idle = 1,
// running = 2, queued = 1, and the queued task sits in the deque of one of the two blocked
// workers (the injection queue is empty, no worker is searching).
//
// Cause (src/scheduler/pool_core.cpp): a searching worker that takes a batch from the injection
// queue calls notify_work() from take_injected(), but notify_work() returns at once while
// searching_ != 0, and the caller itself is the searcher, so that wake-up is dropped. search()
// then hands off once (S3b) and wakes one sleeper; the woken worker goes from park() straight to
// find_task()/run_task() in worker_main() (park_outcome::woken), not through search(), so when it
// finds work it never wakes the next sleeper although more tasks are visible. The remaining
// batch stays in the deque of a worker that is busy (here: blocked) while a worker sleeps.
//
// Python reference: item 76 (a submission that finds no idle thread starts one: work never waits
// while a worker is idle), item 77 (idle workers are reused), W11 (worker accounting races).
//
// The rounds use a long spin window so that the searching worker is the one that takes the
// submissions, which is when the wake-up is lost. Each round waits at most 10 s for its tasks (a
// liveness bound, far above the microseconds a round takes) and then calls the meeting off, so a
// failure reports instead of hanging.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <muster/muster.hpp>
#include <vector>

#include "pool_test_support.hpp"

namespace {
/// Runs `rounds` rounds of `n` tasks that must all be running at once; returns the first round
/// whose tasks did not all start, or -1.
int first_stuck_round(muster::thread_pool& pool, int n, int rounds) {
    for (int round = 0; round < rounds; ++round) {
        auto meet = std::make_shared<muster_test::rendezvous>(n);
        std::vector<muster::future<bool>> fs;
        for (int i = 0; i < n; ++i)
            fs.push_back(pool.submit([meet] { return meet->arrive_and_wait(); }));
        auto const limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        bool stuck = false;
        for (auto& f : fs)
            if (f.wait_until(limit) != std::future_status::ready) stuck = true;
        if (stuck) {
            auto const s = pool.stats();
            ADD_FAILURE() << "round " << round << ": workers=" << s.workers << " idle=" << s.idle
                          << " running=" << s.running << " queued=" << s.queued;
            meet->abort();
            for (auto& f : fs) f.wait();
            return round;
        }
        for (auto& f : fs) EXPECT_TRUE(f.result());
    }
    return -1;
}
}  // namespace

TEST(IdleWorkerSleepsWhileTaskWaitsInBusyWorkerDeque, WarmPoolWithLongSpin_Item76) {
    muster::thread_pool pool({.max_workers = 3, .spin = std::chrono::milliseconds(5)});
    EXPECT_EQ(first_stuck_round(pool, 3, 200), -1);
}

TEST(IdleWorkerSleepsWhileTaskWaitsInBusyWorkerDeque, WarmPoolWithDefaultOptions_Item76) {
    muster::thread_pool pool({.max_workers = 3});
    EXPECT_EQ(first_stuck_round(pool, 3, 2000), -1);
}
