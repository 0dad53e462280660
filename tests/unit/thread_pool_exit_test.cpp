// thread_pool at program exit: a pool that lives until exit (a static) finishes its work and
// does not hang the exit.
//
// Python reference items: 101 (at exit, a live executor that was never shut down runs its
// submitted tasks to completion, and the exit does not hang), 102 (shutdown(wait=False) with a
// running task, then exit: the exit is clean and waits for the task), W12 (exit semantics are
// explicit: the destructor does shutdown(wait=true)).
//
// Each case runs in a child process (a death test). The first task is held by a gate that an
// atexit handler opens; the handler is registered after the pool was constructed, so it runs
// when exit has begun and before the pool's destructor: the task is still running at exit.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <muster/muster.hpp>

namespace {
std::latch& exit_gate() {
    static std::latch gate(1);
    return gate;
}

void open_exit_gate() { exit_gate().count_down(); }

/// Builds a static pool, holds its only worker until exit begins, queues four more tasks, then
/// (optionally after shutdown(wait=false)) exits the process with status 0. The last task to run
/// prints how many ran.
[[noreturn]] void run_and_exit(bool shutdown_first) {
    (void)exit_gate();  // constructed before the pool, destroyed after it
    static std::atomic<int> ran{0};
    static muster::thread_pool pool({.max_workers = 1});
    std::atexit(open_exit_gate);
    auto report = [] {
        if (ran.fetch_add(1) + 1 == 5) std::fputs("ran 5 of 5\n", stderr);
    };
    pool.post([report] {
        exit_gate().wait();
        report();
    });
    for (int i = 0; i < 4; ++i) pool.post(report);
    if (shutdown_first) pool.shutdown({.wait = false});
    std::exit(0);
}
}  // namespace

// Item 101: a pool never shut down finishes its queued and running tasks during exit, and the
// exit completes with status 0; stderr holds only the tasks' own output.
TEST(ThreadPoolExit, LivePoolFinishesItsTasksAtExit_Item101) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(run_and_exit(false), testing::ExitedWithCode(0), "^ran 5 of 5\n$");
}

// Item 102: shutdown(wait=false) with a running task, then exit: the exit waits for the task and
// for the queued ones, and is clean.
TEST(ThreadPoolExit, ShutdownNoWaitThenExitWaitsForTasks_Item102) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(run_and_exit(true), testing::ExitedWithCode(0), "^ran 5 of 5\n$");
}
