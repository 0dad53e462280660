// future<T>::add_done_callback: reference items 22-27 and weakness W2.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <muster/muster.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "futures_support.hpp"

namespace {

using namespace std::chrono_literals;
using muster_test::gate;
using muster_test::held_pool;
using muster_test::lifetime_counts;
using muster_test::test_error;
using muster_test::unhandled_log;

// item 22: a callback added before completion runs exactly once, after the future is done, and
// receives a handle to the same task
TEST(FutureCallback, RunsOnceAfterCompletionWithTheValue) {
    std::atomic<int> calls{0};
    std::atomic<bool> saw_done{false};
    std::atomic<int> saw_value{0};
    std::latch ran{1};
    {
        held_pool hp;
        auto f = hp.submit([] { return 31; });
        f.add_done_callback([&](const muster::future<int>& g) {
            saw_done = g.done();
            saw_value = g.result();
            calls.fetch_add(1);
            ran.count_down();
        });
        EXPECT_EQ(calls.load(), 0) << "the callback ran before the task did";
        hp.release();
        ran.wait();
        EXPECT_EQ(f.result(), 31);
    }  // the pool has finished every task: a second call would have happened by now
    EXPECT_EQ(calls.load(), 1);
    EXPECT_TRUE(saw_done.load());
    EXPECT_EQ(saw_value.load(), 31);
}

// item 22: the same on failure
TEST(FutureCallback, RunsOnceOnFailure) {
    std::atomic<int> calls{0};
    std::exception_ptr seen;
    std::latch ran{1};
    {
        held_pool hp;
        auto f = hp.submit([]() -> int { throw test_error("nope", 5); });
        f.add_done_callback([&](const muster::future<int>& g) {
            seen = g.exception();
            calls.fetch_add(1);
            ran.count_down();
        });
        hp.release();
        ran.wait();
    }
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(muster_test::message_of(seen), "nope");
}

// items 22, 27: on cancellation the callback runs once, on the cancelling thread, before cancel()
// returns
TEST(FutureCallback, OnCancelRunsOnTheCancellingThread) {
    std::atomic<int> calls{0};
    std::thread::id ran_on;
    std::thread::id canceller;
    bool saw_cancelled = false;
    {
        held_pool hp;
        auto f = hp.submit([] { return 1; });
        f.add_done_callback([&](const muster::future<int>& g) {
            ran_on = std::this_thread::get_id();
            saw_cancelled = g.cancelled();
            calls.fetch_add(1);
        });
        std::thread t([&] {
            canceller = std::this_thread::get_id();
            EXPECT_TRUE(f.cancel());
            EXPECT_EQ(calls.load(), 1) << "cancel() returned before the callback ran";
        });
        t.join();
    }
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(ran_on, canceller);
    EXPECT_TRUE(saw_cancelled);
}

// item 27: a callback added before completion runs on the thread that completes the task (the
// worker that ran it)
TEST(FutureCallback, RunsOnTheWorkerThatCompletesTheTask) {
    std::thread::id task_thread;
    std::thread::id callback_thread;
    std::latch ran{1};
    held_pool hp;
    auto f = hp.submit([&] {
        task_thread = std::this_thread::get_id();
        return 0;
    });
    f.add_done_callback([&](const muster::future<int>&) {
        callback_thread = std::this_thread::get_id();
        ran.count_down();
    });
    hp.release();
    ran.wait();
    EXPECT_EQ(callback_thread, task_thread);
    EXPECT_NE(callback_thread, std::this_thread::get_id());
}

// item 23: a callback added after completion runs at once on the calling thread (value, failure
// and cancellation)
TEST(FutureCallback, AddedAfterCompletionRunsImmediatelyOnTheCaller) {
    muster::thread_pool pool({.max_workers = 1});
    auto ok = muster_test::done_future(pool, 1);
    auto bad = muster_test::failed_future(pool, "x");
    held_pool hp;
    auto cancelled = hp.submit([] { return 0; });
    ASSERT_TRUE(cancelled.cancel());

    for (auto* f : {&ok, &bad, &cancelled}) {
        bool ran = false;
        std::thread::id ran_on;
        f->add_done_callback([&](const muster::future<int>& g) {
            EXPECT_TRUE(g.done());
            ran_on = std::this_thread::get_id();
            ran = true;
        });
        EXPECT_TRUE(ran) << "add_done_callback returned before running the callback";
        EXPECT_EQ(ran_on, std::this_thread::get_id());
    }
}

// item 24: callbacks run in registration order
TEST(FutureCallback, RunInRegistrationOrder) {
    std::mutex mu;
    std::vector<int> order;
    std::latch all{8};
    held_pool hp;
    auto f = hp.submit([] { return 0; });
    for (int i = 0; i < 8; ++i)
        f.add_done_callback([&, i](const muster::future<int>&) {
            {
                std::lock_guard lock(mu);
                order.push_back(i);
            }
            all.count_down();
        });
    hp.release();
    all.wait();
    std::lock_guard lock(mu);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

// item 24: the order holds for cancellation too, and callbacks added afterwards run after them
TEST(FutureCallback, RegistrationOrderOnCancelThenLateCallback) {
    std::vector<int> order;  // every callback runs on this thread
    held_pool hp;
    auto f = hp.submit([] { return 0; });
    for (int i = 0; i < 4; ++i)
        f.add_done_callback([&, i](const muster::future<int>&) { order.push_back(i); });
    ASSERT_TRUE(f.cancel());
    f.add_done_callback([&](const muster::future<int>&) { order.push_back(4); });
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// items 25, W2: a throwing callback goes to the pool's on_unhandled_exception handler, whatever
// it throws, and the later callbacks still run
TEST(FutureCallback, ThrowingCallbackIsReportedAndLaterCallbacksRun) {
    unhandled_log log;
    std::atomic<int> later{0};
    std::latch last{1};
    {
        held_pool hp({.on_unhandled_exception = log.handler()});
        auto f = hp.submit([] { return 2; });
        f.add_done_callback(
            [](const muster::future<int>&) { throw test_error("callback one", 1); });
        f.add_done_callback([&](const muster::future<int>&) { later.fetch_add(1); });
        f.add_done_callback([](const muster::future<int>&) { throw 17; });  // not a std::exception
        f.add_done_callback([&](const muster::future<int>&) {
            later.fetch_add(1);
            last.count_down();
        });
        hp.release();
        last.wait();
        EXPECT_EQ(f.result(), 2) << "a throwing callback must not change the outcome";
    }
    EXPECT_EQ(later.load(), 2);
    auto const errors = log.errors();
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(muster_test::message_of(errors[0]), "callback one");
    try {
        std::rethrow_exception(errors[0]);
    } catch (const test_error& e) {
        EXPECT_EQ(e.code(), 1);
    } catch (...) {
        ADD_FAILURE() << "the handler got another type than the callback threw";
    }
    try {
        std::rethrow_exception(errors[1]);
    } catch (int v) {
        EXPECT_EQ(v, 17);
    } catch (...) {
        ADD_FAILURE() << "the handler got another type than the callback threw";
    }
}

// items 23, 25: a callback that throws when added to a finished future is reported, and
// add_done_callback itself does not throw
TEST(FutureCallback, ThrowingCallbackOnFinishedFutureIsReportedNotThrown) {
    unhandled_log log;
    {
        muster::thread_pool pool({.max_workers = 1, .on_unhandled_exception = log.handler()});
        auto f = muster_test::done_future(pool, 1);
        EXPECT_NO_THROW(f.add_done_callback(
            [](const muster::future<int>&) { throw test_error("late callback", 2); }));
        ASSERT_EQ(log.size(), 1u);
        EXPECT_EQ(muster_test::message_of(log.errors()[0]), "late callback");
    }
}

// items 25, 27: a callback that throws on cancel is reported, and cancel() does not throw
TEST(FutureCallback, ThrowingCallbackOnCancelIsReportedNotThrown) {
    unhandled_log log;
    std::atomic<int> later{0};
    {
        held_pool hp({.on_unhandled_exception = log.handler()});
        auto f = hp.submit([] { return 0; });
        f.add_done_callback([](const muster::future<int>&) { throw test_error("on cancel", 3); });
        f.add_done_callback([&](const muster::future<int>&) { later.fetch_add(1); });
        bool result = false;
        EXPECT_NO_THROW(result = f.cancel());
        EXPECT_TRUE(result);
        EXPECT_EQ(later.load(), 1);
    }
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(muster_test::message_of(log.errors()[0]), "on cancel");
}

// W2: a throwing callback never takes the worker down; a one-worker pool keeps running tasks
TEST(FutureCallback, ThrowingCallbacksDoNotKillTheWorker) {
    unhandled_log log;
    gate g;
    muster::thread_pool pool({.max_workers = 1, .on_unhandled_exception = log.handler()});
    muster_test::open_on_exit opener{&g};
    auto first = pool.submit([&] {
        g.wait();
        return 1;
    });
    for (int i = 0; i < 3; ++i)
        first.add_done_callback([](const muster::future<int>&) { throw test_error("cb", 0); });
    g.open();
    EXPECT_EQ(first.result(), 1);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(pool.submit([i] { return i; }).result(), i);
    pool.shutdown();
    EXPECT_EQ(log.size(), 3u);
}

// item 26: a callback may call result() on its own future without deadlocking
TEST(FutureCallback, CallbackMayCallResultOnTheSameFuture) {
    std::latch ran{1};
    std::atomic<int> seen{0};
    held_pool hp;
    auto f = hp.submit([] { return 64; });
    f.add_done_callback([&f, &seen, &ran](const muster::future<int>&) {
        seen = f.result() + f.result(0ms);  // the caller's own handle, not the argument
        ran.count_down();
    });
    hp.release();
    ran.wait();
    EXPECT_EQ(seen.load(), 128);
}

// item 26: waiters are woken before the callbacks run, so a waiter may resume while a callback
// is still running (here the callback waits for the waiter to resume)
TEST(FutureCallback, WaitersResumeBeforeCallbacksFinish) {
    std::promise<void> waiter_resumed;
    auto resumed = waiter_resumed.get_future();
    std::atomic<bool> callback_saw_waiter{false};
    std::latch ran{1};
    gate go;
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([&] {
        go.wait();
        return 3;
    });
    f.add_done_callback([&](const muster::future<int>&) {
        // Generous bound: only a broken ordering (callbacks before waking waiters) reaches it.
        callback_saw_waiter = resumed.wait_for(10s) == std::future_status::ready;
        ran.count_down();
    });
    std::thread opener([&] {
        // Gives this thread the chance to block in result() before the task completes.
        std::this_thread::sleep_for(20ms);
        go.open();
    });
    EXPECT_EQ(f.result(), 3);
    waiter_resumed.set_value();
    ran.wait();
    opener.join();
    EXPECT_TRUE(callback_saw_waiter.load());
}

// item 22: callbacks added from several threads while the task completes each run exactly once
TEST(FutureCallback, ConcurrentAddsWhileCompletingRunEachExactlyOnce) {
    constexpr int threads = 4;
    constexpr int per_thread = 300;
    std::vector<std::atomic<int>> calls(threads * per_thread);
    std::latch all_ran{threads * per_thread};
    {
        muster::thread_pool pool({.max_workers = 1});
        // The task and the adders start together; the task finishes while callbacks are added.
        std::barrier start(threads + 1);
        auto f = pool.submit([&] {
            start.arrive_and_wait();
            return 0;
        });
        std::vector<std::thread> adders;
        for (int t = 0; t < threads; ++t)
            adders.emplace_back([&, t] {
                start.arrive_and_wait();
                for (int i = 0; i < per_thread; ++i) {
                    int const slot = t * per_thread + i;
                    f.add_done_callback([&calls, &all_ran, slot](const muster::future<int>& g) {
                        EXPECT_TRUE(g.done());
                        calls[slot].fetch_add(1);
                        all_ran.count_down();
                    });
                }
            });
        for (auto& a : adders) a.join();
        all_ran.wait();
    }  // the pool has finished: a duplicate call would have happened by now
    for (std::size_t i = 0; i < calls.size(); ++i)
        ASSERT_EQ(calls[i].load(), 1) << "callback " << i;
}

// item 22: a callback and its captures are destroyed after it ran (no leak, no second run)
TEST(FutureCallback, CallbackCapturesAreReleasedAfterTheCall) {
    lifetime_counts counts;
    std::atomic<int> calls{0};
    {
        held_pool hp;
        auto f = hp.submit([] { return 1; });
        f.add_done_callback([c = muster_test::counted(counts, 1),
                             &calls](const muster::future<int>&) { calls.fetch_add(c.value()); });
        EXPECT_EQ(counts.alive(), 1);
        ASSERT_TRUE(f.cancel());
        EXPECT_EQ(calls.load(), 1);
        EXPECT_EQ(counts.alive(), 0) << "the callback object must be destroyed once it ran";
    }
}

// item 23: a callback added from inside another callback of the same (now done) future runs at
// once, on that thread
TEST(FutureCallback, CallbackAddedFromACallbackRunsAtOnce) {
    std::vector<int> order;  // every callback runs on this thread (the cancelling one)
    held_pool hp;
    auto f = hp.submit([] { return 0; });
    f.add_done_callback([&](const muster::future<int>& g) {
        order.push_back(1);
        g.add_done_callback([&](const muster::future<int>&) { order.push_back(2); });
        order.push_back(3);
    });
    f.add_done_callback([&](const muster::future<int>&) { order.push_back(4); });
    ASSERT_TRUE(f.cancel());
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
}

// item 27: callbacks of tasks cancelled by shutdown({.cancel_pending = true}) run on the thread
// that calls shutdown
TEST(FutureCallback, ShutdownCancelPendingRunsCallbacksOnTheCaller) {
    std::vector<std::thread::id> ran_on(3);
    std::thread::id caller;
    {
        held_pool hp;
        std::vector<muster::future<int>> fs;
        for (int i = 0; i < 3; ++i) {
            fs.push_back(hp.submit([] { return 0; }));
            fs.back().add_done_callback([&ran_on, i](const muster::future<int>& g) {
                EXPECT_TRUE(g.cancelled());
                ran_on[static_cast<std::size_t>(i)] = std::this_thread::get_id();
            });
        }
        std::thread t([&] {
            caller = std::this_thread::get_id();
            hp.pool().shutdown({.wait = false, .cancel_pending = true});
        });
        t.join();
        for (auto const& f : fs) EXPECT_TRUE(f.cancelled());
    }
    for (auto const& id : ran_on) EXPECT_EQ(id, caller);
}

// item 25: a throwing callback on a future whose pool no longer exists is reported on stderr
// (there is no handler left) and never thrown to the caller
TEST(FutureCallback, ThrowingCallbackAfterThePoolIsGoneDoesNotThrow) {
    muster::future<int> f;
    {
        muster::thread_pool pool({.max_workers = 1});
        f = muster_test::done_future(pool, 1);
    }
    bool ran = false;
    EXPECT_NO_THROW(f.add_done_callback([&](const muster::future<int>&) {
        ran = true;
        throw test_error("nobody listens", 0);
    }));
    EXPECT_TRUE(ran);
    EXPECT_EQ(f.result(), 1);
}

// item 22: callbacks on a void future
TEST(FutureCallback, VoidFutureCallback) {
    std::latch ran{1};
    bool ok = false;
    held_pool hp;
    muster::future<void> f = hp.submit([] {});
    f.add_done_callback([&](const muster::future<void>& g) {
        g.result();
        ok = true;
        ran.count_down();
    });
    hp.release();
    ran.wait();
    EXPECT_TRUE(ok);
}

}  // namespace
