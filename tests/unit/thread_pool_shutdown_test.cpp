// thread_pool shutdown, terminate and the destructor.
//
// Python reference items: 63 (submit after shutdown raises), 65 (shutdown is idempotent), 66
// (shutdown(wait=True) returns after every task completed), 67 (shutdown(wait=False) returns at
// once, queued tasks still run), 68 (cancel_futures cancels not-started tasks, running ones
// finish), 69 (a cancelled future does not hang shutdown), 72 (scope exit = shutdown(wait=True)),
// 100 (a dropped executor shuts itself down and results stay available), W12 (explicit
// destructor semantics), W13 (shutdown from inside a worker).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <muster/muster.hpp>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "pool_test_support.hpp"

using namespace std::chrono_literals;
using muster_test::lifetime_counts;
using muster_test::poll_until;
using muster_test::tracked;
using muster_test::worker_hold;

// Item 63: after shutdown(), submit, post, map and map_unordered throw shutdown_error (a
// muster::error), and nothing runs.
TEST(ThreadPoolShutdown, SubmitPostMapAfterShutdownThrowShutdownError_Item63) {
    muster::thread_pool pool({.max_workers = 2});
    EXPECT_EQ(pool.submit([] { return 1; }).result(), 1);
    pool.shutdown();
    std::atomic<int> ran{0};
    EXPECT_THROW((void)pool.submit([&] { return ran.fetch_add(1); }), muster::shutdown_error);
    EXPECT_THROW(pool.post([&] { ran.fetch_add(1); }), muster::shutdown_error);
    std::vector<int> input{1, 2, 3};
    auto fn = [&](int x) {
        ran.fetch_add(1);
        return x;
    };
    EXPECT_THROW((void)pool.map(fn, input), muster::shutdown_error);
    EXPECT_THROW((void)pool.map_unordered(fn, input), muster::shutdown_error);
    try {
        (void)pool.submit([] {});
        FAIL() << "expected shutdown_error";
    } catch (const muster::error& e) {
        EXPECT_NE(dynamic_cast<const muster::shutdown_error*>(&e), nullptr) << e.what();
    }
    EXPECT_EQ(ran.load(), 0);
}

// Item 65: shutdown may be called any number of times, with any options, also after terminate.
TEST(ThreadPoolShutdown, ShutdownIsIdempotent_Item65) {
    muster::thread_pool pool({.max_workers = 2});
    auto f = pool.submit([] { return 3; });
    pool.shutdown();
    pool.shutdown();
    pool.shutdown({.wait = false});
    pool.shutdown({.wait = true, .cancel_pending = true});
    pool.terminate();
    pool.shutdown();
    EXPECT_EQ(f.result(), 3);
    EXPECT_EQ(pool.stats().workers, 0u);
}

// Item 65: concurrent shutdown calls from several threads all return.
TEST(ThreadPoolShutdown, ConcurrentShutdownCallsAllReturn_Item65) {
    muster::thread_pool pool({.max_workers = 2});
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < 100; ++i) fs.push_back(pool.submit([i] { return i; }));
    std::latch go(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            go.arrive_and_wait();
            pool.shutdown();
        });
    for (auto& t : threads) t.join();
    for (int i = 0; i < 100; ++i) {
        EXPECT_TRUE(fs[i].done());
        EXPECT_EQ(fs[i].result(), i);
    }
}

// Item 66: shutdown(wait=true) returns only after every queued and running task has completed and
// the workers are gone. The first task is held until shutdown() has begun, so the others are
// still queued when it is called.
TEST(ThreadPoolShutdown, ShutdownWaitReturnsAfterAllQueuedTasksRan_Item66) {
    muster::thread_pool pool({.max_workers = 1});
    std::latch gate(1);
    std::atomic<int> ran{0};
    std::vector<muster::future<int>> fs;
    fs.push_back(pool.submit([&] {
        gate.wait();
        return ran.fetch_add(1);
    }));
    for (int i = 0; i < 50; ++i) fs.push_back(pool.submit([&] { return ran.fetch_add(1); }));
    std::thread opener = muster_test::count_down_when_shut_down(pool, gate);
    pool.shutdown({.wait = true});
    opener.join();
    EXPECT_EQ(ran.load(), 51);
    std::vector<int> order;
    for (auto& f : fs) {
        ASSERT_TRUE(f.done());
        order.push_back(f.result());
    }
    std::sort(order.begin(), order.end());
    for (int i = 0; i < 51; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);  // each ran once
    EXPECT_EQ(pool.stats().workers, 0u);
}

// Item 67: shutdown(wait=false) returns while a task is still running (the worker is held; a
// waiting shutdown would never return), queued tasks still run, and the destructor then waits
// for them (items 72, 100).
TEST(ThreadPoolShutdown, ShutdownNoWaitReturnsAtOnceAndQueuedTasksStillRun_Item67) {
    std::atomic<int> ran{0};
    std::vector<muster::future<int>> fs;
    {
        muster::thread_pool pool({.max_workers = 1});
        std::latch gate(1);
        fs.push_back(pool.submit([&] {
            gate.wait();
            return ran.fetch_add(1);
        }));
        for (int i = 0; i < 20; ++i) fs.push_back(pool.submit([&] { return ran.fetch_add(1); }));
        pool.shutdown({.wait = false});
        EXPECT_FALSE(fs.front().done());
        EXPECT_THROW((void)pool.submit([] { return 0; }), muster::shutdown_error);
        gate.count_down();
    }
    EXPECT_EQ(ran.load(), 21);
    for (auto& f : fs) EXPECT_TRUE(f.done());
}

// Item 68: shutdown(cancel_pending) cancels every queued future at once (they report cancelled
// and their callables are destroyed unrun); the running task finishes normally.
TEST(ThreadPoolShutdown, CancelPendingCancelsQueuedFutures_Item68) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 1});
    std::latch gate(1);
    auto running = pool.submit([&] {
        gate.wait();
        return 99;
    });
    // Wait until it runs, so it is not among the queued tasks.
    ASSERT_TRUE(poll_until([&] { return running.running(); }));
    std::atomic<int> ran{0};
    std::vector<muster::future<int>> queued;
    for (int i = 0; i < 10; ++i)
        queued.push_back(pool.submit([&ran, t = tracked(c, i)] {
            ran.fetch_add(1);
            return t.value();
        }));
    pool.shutdown({.wait = false, .cancel_pending = true});
    for (auto& f : queued) {
        EXPECT_TRUE(f.cancelled());
        EXPECT_TRUE(f.done());
        EXPECT_THROW(f.result(), muster::cancelled_error);
    }
    EXPECT_EQ(c.alive(), 0);
    gate.count_down();
    EXPECT_EQ(running.result(), 99);
    pool.shutdown();
    EXPECT_EQ(ran.load(), 0);
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// Item 68 with wait: shutdown(wait=true, cancel_pending=true) returns once the running task has
// finished; it finished with its own result.
TEST(ThreadPoolShutdown, CancelPendingWithWaitLetsRunningTaskFinish_Item68) {
    muster::thread_pool pool({.max_workers = 1});
    std::latch gate(1);
    auto running = pool.submit([&] {
        gate.wait();
        return 5;
    });
    ASSERT_TRUE(poll_until([&] { return running.running(); }));
    auto queued = pool.submit([] { return 6; });
    std::thread opener = muster_test::count_down_when_shut_down(pool, gate);
    pool.shutdown({.wait = true, .cancel_pending = true});
    opener.join();
    EXPECT_TRUE(running.done());
    EXPECT_EQ(running.result(), 5);
    EXPECT_TRUE(queued.cancelled());
}

// Item 69 (test_hang_gh94440): a future cancelled by hand before it started never executes, and
// a later shutdown(wait=true) does not hang on it.
TEST(ThreadPoolShutdown, CancelledFutureDoesNotHangShutdown_Item69) {
    muster::thread_pool pool({.max_workers = 1});
    std::atomic<bool> ran{false};
    muster::future<void> f;
    {
        worker_hold hold(pool);
        f = pool.submit([&] { ran = true; });
        EXPECT_TRUE(f.cancel());
    }
    pool.shutdown();
    EXPECT_TRUE(f.cancelled());
    EXPECT_FALSE(ran.load());
}

// Items 72, 100: the destructor shuts down and waits: queued tasks all run, and the futures
// outlive the pool with their results.
TEST(ThreadPoolShutdown, DestructorWaitsForQueuedTasks_Item100) {
    std::atomic<int> ran{0};
    std::vector<muster::future<int>> fs;
    {
        muster::thread_pool pool({.max_workers = 1});
        std::latch gate(1);
        fs.push_back(pool.submit([&] {
            gate.wait();
            return ran.fetch_add(1);
        }));
        for (int i = 0; i < 100; ++i) fs.push_back(pool.submit([&] { return ran.fetch_add(1); }));
        gate.count_down();  // the destructor below starts with (almost all of) the tasks queued
    }
    EXPECT_EQ(ran.load(), 101);
    std::vector<int> order;
    for (auto& f : fs) {
        ASSERT_TRUE(f.done());
        order.push_back(f.result());
    }
    std::sort(order.begin(), order.end());
    for (int i = 0; i < 101; ++i)
        EXPECT_EQ(order[static_cast<std::size_t>(i)], i);  // each ran once
}

// W13: shutdown(wait=true) called from inside a task does not deadlock (a task cannot wait for
// itself); the pool's other tasks still finish and the destructor joins the workers.
TEST(ThreadPoolShutdown, ShutdownFromInsideATaskDoesNotDeadlock_W13) {
    std::atomic<int> ran{0};
    std::vector<muster::future<int>> fs;
    muster::future<bool> closer;
    {
        muster::thread_pool pool({.max_workers = 2});
        muster_test::worker_hold hold(pool);  // one worker busy: the others queue
        std::latch gate(1);
        closer = pool.submit([&] {
            gate.wait();
            pool.shutdown({.wait = true});
            return true;
        });
        for (int i = 0; i < 30; ++i) fs.push_back(pool.submit([&] { return ran.fetch_add(1); }));
        gate.count_down();
        EXPECT_TRUE(closer.result());
        EXPECT_TRUE(muster_test::refuses_submissions(pool));
        hold.release();
    }
    EXPECT_EQ(ran.load(), 30);
    for (auto& f : fs) EXPECT_TRUE(f.done());
}

// W13 on a single worker: the task that shuts the pool down is the only worker, and the queued
// tasks behind it still run after it returns.
TEST(ThreadPoolShutdown, ShutdownFromTheOnlyWorkerStillRunsQueuedTasks_W13) {
    std::atomic<int> ran{0};
    std::vector<muster::future<int>> fs;
    {
        muster::thread_pool pool({.max_workers = 1});
        std::latch gate(1);
        auto closer = pool.submit([&] {
            gate.wait();
            pool.shutdown();
        });
        for (int i = 0; i < 10; ++i) fs.push_back(pool.submit([&] { return ran.fetch_add(1); }));
        gate.count_down();
        closer.result();
    }
    EXPECT_EQ(ran.load(), 10);
}

// Destroying the pool from inside one of its own tasks (the last owner is then a worker): the
// destructor does not wait for the calling task, and everything queued still completes.
TEST(ThreadPoolShutdown, DestroyingThePoolFromItsOwnTask_W13) {
    auto pool =
        std::make_unique<muster::thread_pool>(muster::thread_pool_options{.max_workers = 2});
    std::atomic<int> ran{0};
    std::vector<muster::future<int>> fs;
    std::latch gate(1);
    auto destroyer = pool->submit([&] {
        gate.wait();
        pool.reset();
        return 1;
    });
    for (int i = 0; i < 20; ++i) fs.push_back(pool->submit([&] { return ran.fetch_add(1); }));
    gate.count_down();
    EXPECT_EQ(destroyer.result(), 1);
    for (auto& f : fs) (void)f.result();
    EXPECT_EQ(ran.load(), 20);
    EXPECT_EQ(pool, nullptr);
}

// Shutdown racing with submits from several threads: every submit either returns a future that
// completes (its task runs exactly once) or throws shutdown_error; nothing is lost and nothing
// hangs. Every accepted future is done when shutdown(wait=true) returns.
TEST(ThreadPoolShutdown, ShutdownRacingWithSubmitsLosesNothing_Item66) {
    constexpr int producers = 4;
    for (int round = 0; round < 5; ++round) {
        muster::thread_pool pool({.max_workers = 2});
        std::atomic<int> accepted{0};
        std::latch enough(1);
        std::vector<std::vector<std::pair<muster::future<void>, std::shared_ptr<std::atomic<int>>>>>
            got(producers);
        std::vector<int> refused(producers, 0);
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p)
            threads.emplace_back([&, p] {
                for (;;) {
                    auto runs = std::make_shared<std::atomic<int>>(0);
                    try {
                        got[p].emplace_back(pool.submit([runs] { runs->fetch_add(1); }), runs);
                    } catch (const muster::shutdown_error&) {
                        ++refused[p];
                        return;
                    }
                    if (accepted.fetch_add(1) + 1 == 500) enough.count_down();
                }
            });
        enough.wait();
        pool.shutdown({.wait = true});
        for (auto& t : threads) t.join();
        int total = 0;
        for (int p = 0; p < producers; ++p) {
            EXPECT_EQ(refused[p], 1);
            for (auto& [f, runs] : got[p]) {
                ASSERT_TRUE(f.done());
                EXPECT_FALSE(f.cancelled());
                EXPECT_EQ(runs->load(), 1);
                ++total;
            }
        }
        EXPECT_EQ(total, accepted.load());
        EXPECT_GE(total, 500);
    }
}

// Item 66 / DESIGN §4: during a plain shutdown's drain, tasks submitted by a running task are
// still accepted and run (a running fork-join can finish).
TEST(ThreadPoolShutdown, RunningTasksMaySubmitDuringPlainShutdown) {
    muster::thread_pool pool({.max_workers = 1});
    std::latch gate(1);
    auto outer = pool.submit([&] {
        gate.wait();
        return pool.submit([] { return 7; });
    });
    pool.shutdown({.wait = false});
    EXPECT_TRUE(muster_test::refuses_submissions(pool));
    gate.count_down();
    pool.shutdown({.wait = true});
    muster::future<int> inner = outer.result();
    ASSERT_TRUE(inner.done());
    EXPECT_EQ(inner.result(), 7);
}

// With cancel_pending, the pool's own tasks are refused too: a running task's submit throws
// shutdown_error.
TEST(ThreadPoolShutdown, RunningTasksCannotSubmitAfterCancelPending_Item68) {
    muster::thread_pool pool({.max_workers = 1});
    std::latch gate(1);
    auto outer = pool.submit([&] {
        gate.wait();
        try {
            (void)pool.submit([] { return 7; });
            return false;
        } catch (const muster::shutdown_error&) {
            return true;
        }
    });
    ASSERT_TRUE(poll_until([&] { return outer.running(); }));
    pool.shutdown({.wait = false, .cancel_pending = true});
    gate.count_down();
    EXPECT_TRUE(outer.result());
}

// terminate(): queued tasks are cancelled, a running stop_token task sees stop requested, and
// terminate returns only after the running tasks ended. Later submits throw shutdown_error.
TEST(ThreadPoolTerminate, CancelsQueuedStopsRunningAndWaits) {
    muster::thread_pool pool({.max_workers = 2});
    std::latch started(2);
    std::latch plain_release(1);
    std::atomic<bool> plain_finished{false};
    auto stoppable = pool.submit([&](std::stop_token st) {
        std::latch stopped(1);
        std::stop_callback on_stop(st, [&] { stopped.count_down(); });
        started.count_down();
        stopped.wait();
        return st.stop_requested();
    });
    auto plain = pool.submit([&] {
        started.count_down();
        plain_release.wait();
        plain_finished = true;
        return 2;
    });
    started.wait();
    std::atomic<int> ran{0};
    std::vector<muster::future<void>> queued;
    for (int i = 0; i < 10; ++i) queued.push_back(pool.submit([&] { ran.fetch_add(1); }));
    std::thread opener = muster_test::count_down_when_shut_down(pool, plain_release);
    pool.terminate();
    opener.join();
    EXPECT_TRUE(stoppable.done());
    EXPECT_TRUE(stoppable.result());
    EXPECT_TRUE(plain_finished.load());
    EXPECT_EQ(plain.result(), 2);
    for (auto& f : queued) EXPECT_TRUE(f.cancelled());
    EXPECT_EQ(ran.load(), 0);
    EXPECT_EQ(pool.stats().workers, 0u);
    EXPECT_THROW((void)pool.submit([] {}), muster::shutdown_error);
    pool.terminate();  // idempotent
    pool.shutdown();
}

// terminate() on a pool that never started a worker returns at once.
TEST(ThreadPoolTerminate, OnAnUnusedPoolIsANoOp) {
    muster::thread_pool pool({.max_workers = 2});
    pool.terminate();
    EXPECT_EQ(pool.stats().workers, 0u);
    EXPECT_THROW((void)pool.submit([] {}), muster::shutdown_error);
}
