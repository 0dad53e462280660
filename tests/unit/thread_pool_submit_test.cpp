// thread_pool submit and post: arguments, callable and result lifetimes, stop tokens,
// exceptions of fire-and-forget tasks.
//
// Python reference items: 21 (a task's exception is captured and the worker survives), 62
// (submit schedules fn(*args)), 71 (the executor drops the callable once the task is done), W2
// (nothing thrown by user code kills a worker).

#include <gtest/gtest.h>

#include <atomic>
#include <exception>
#include <functional>
#include <latch>
#include <memory>
#include <muster/muster.hpp>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "pool_test_support.hpp"
#include "unhandled_log.hpp"

using muster_test::lifetime_counts;
using muster_test::tracked;

using muster_test::message_of;
using muster_test::unhandled_log;

// ---- submit ----------------------------------------------------------------------------------

// Item 62: submit(fn, args...) schedules fn(args...) and returns its future.
TEST(ThreadPoolSubmit, CallsTheCallableWithItsArguments_Item62) {
    muster::thread_pool pool({.max_workers = 2});
    auto f = pool.submit([](int a, const std::string& b,
                            double c) { return b + std::to_string(a + static_cast<int>(c)); },
                         40, std::string("x"), 2.0);
    EXPECT_EQ(f.result(), "x42");
    auto g = pool.submit([] {});
    g.result();
    EXPECT_TRUE(g.done());
}

// Arguments are decay-copied into the task: the task works on its own copy, so later changes
// of the caller's variable do not reach it.
TEST(ThreadPoolSubmit, ArgumentsAreDecayCopied_Item62) {
    muster::thread_pool pool({.max_workers = 1});
    muster_test::worker_hold hold(pool);
    std::string s = "before";
    auto f = pool.submit([](std::string own) { return own + "!"; }, s);
    s = "after";
    hold.release();
    EXPECT_EQ(f.result(), "before!");
    EXPECT_EQ(s, "after");
}

// An rvalue callable is moved into the task, never copied; it is destroyed exactly once, when
// the task has run and before the future reports done (item 71: no stale references).
TEST(ThreadPoolSubmit, RvalueCallableIsMovedNeverCopiedAndDroppedWhenDone_Item71) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([t = tracked(c, 5)] { return t.value(); });
    EXPECT_EQ(f.result(), 5);
    EXPECT_EQ(c.copies.load(), 0);
    EXPECT_LE(c.moves.load(), 3);
    EXPECT_EQ(c.alive(), 0) << "the callable must be destroyed once the task is done";
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// An lvalue callable is copied exactly once; the caller's object stays untouched.
TEST(ThreadPoolSubmit, LvalueCallableIsCopiedOnce) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 1});
    auto fn = [t = tracked(c, 6)] { return t.value(); };
    long const base_moves = c.moves.load();
    auto f = pool.submit(fn);
    EXPECT_EQ(f.result(), 6);
    EXPECT_EQ(c.copies.load(), 1);
    EXPECT_LE(c.moves.load() - base_moves, 3);
    EXPECT_EQ(c.alive(), 1);  // only the caller's own lambda is left
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// Arguments: an lvalue is copied once, an rvalue is moved (no copy); both are destroyed once the
// task is done.
TEST(ThreadPoolSubmit, ArgumentCopiesAndMoves) {
    lifetime_counts lv;
    lifetime_counts rv;
    muster::thread_pool pool({.max_workers = 1});
    tracked arg(lv, 3);
    auto f = pool.submit([](tracked a, tracked b) { return a.value() + b.value(); }, arg,
                         tracked(rv, 4));
    EXPECT_EQ(f.result(), 7);
    EXPECT_EQ(lv.copies.load(), 1);
    EXPECT_EQ(rv.copies.load(), 0);
    EXPECT_EQ(lv.alive(), 1);  // `arg`
    EXPECT_EQ(rv.alive(), 0);
    EXPECT_EQ(lv.double_destroyed.load() + rv.double_destroyed.load(), 0);
}

// A result is built in the task, never copied; result() && moves it out; the stored value is
// destroyed exactly once, when the last handle goes away.
TEST(ThreadPoolSubmit, ResultIsNeverCopiedAndDestroyedOnce) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 1});
    {
        auto f = pool.submit([&c] { return tracked(c, 8); });
        auto g = f;                        // a second handle to the same task
        EXPECT_EQ(f.result().value(), 8);  // a reference into the task: no copy
        EXPECT_EQ(c.copies.load(), 0);
        tracked out = std::move(g).result();
        EXPECT_EQ(out.value(), 8);
        EXPECT_EQ(c.copies.load(), 0);
        EXPECT_EQ(c.alive(), 2);  // `out` and the moved-from value held by the task
    }
    pool.wait_idle();  // the worker's reference to the task block is gone too
    EXPECT_EQ(c.alive(), 0);
    EXPECT_EQ(c.copies.load(), 0);
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// A cancelled task's callable is destroyed at cancel() and never run.
TEST(ThreadPoolSubmit, CancelledTaskDropsItsCallableAtOnce) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 1});
    muster_test::worker_hold hold(pool);
    std::atomic<bool> ran{false};
    auto f = pool.submit([&ran, t = tracked(c, 1)] {
        ran = true;
        return t.value();
    });
    EXPECT_EQ(c.alive(), 1);
    EXPECT_TRUE(f.cancel());
    EXPECT_EQ(c.alive(), 0);
    hold.release();
    pool.wait_idle();
    EXPECT_FALSE(ran.load());
    EXPECT_TRUE(f.cancelled());
    EXPECT_THROW(f.result(), muster::cancelled_error);
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// Move-only callables, arguments and results work.
TEST(ThreadPoolSubmit, MoveOnlyCallableArgumentAndResult) {
    muster::thread_pool pool({.max_workers = 1});
    auto p = std::make_unique<int>(20);
    auto f = pool.submit(
        [q = std::move(p)](std::unique_ptr<int> r) { return std::make_unique<int>(*q + *r); },
        std::make_unique<int>(22));
    std::unique_ptr<int> out = std::move(f).result();
    ASSERT_TRUE(out);
    EXPECT_EQ(*out, 42);
}

// Item 21: a task's exception is captured in its future (unchanged type and message), and the
// worker survives it: the next task runs on the same single worker.
TEST(ThreadPoolSubmit, TaskExceptionIsCapturedAndWorkerSurvives_Item21) {
    muster::thread_pool pool({.max_workers = 1});
    auto bad = pool.submit([]() -> int { throw std::out_of_range("index 9"); });
    try {
        (void)bad.result();
        FAIL() << "expected std::out_of_range";
    } catch (const std::out_of_range& e) {
        EXPECT_STREQ(e.what(), "index 9");
    }
    auto thrower_thread = pool.submit([] { return std::this_thread::get_id(); }).result();
    auto also = pool.submit([]() -> int { throw 7; });
    EXPECT_THROW((void)also.result(), int);
    EXPECT_EQ(pool.submit([] { return std::this_thread::get_id(); }).result(), thrower_thread);
    EXPECT_EQ(pool.stats().workers, 1u);
}

// A task may submit more tasks to its own pool.
TEST(ThreadPoolSubmit, TasksMaySubmitToTheirOwnPool) {
    muster::thread_pool pool({.max_workers = 2});
    auto f = pool.submit([&pool] {
        std::vector<muster::future<int>> inner;
        for (int i = 0; i < 10; ++i) inner.push_back(pool.submit([i] { return i; }));
        int sum = 0;
        for (auto& g : inner) sum += g.result();
        return sum;
    });
    EXPECT_EQ(f.result(), 45);
}

// ---- stop tokens -------------------------------------------------------------------------------

// A callable that takes a std::stop_token first receives one; extra arguments follow it.
TEST(ThreadPoolSubmit, StopTokenCallableGetsATokenAndArguments) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([](std::stop_token st,
                            int x) { return st.stop_possible() && !st.stop_requested() ? x : -1; },
                         11);
    EXPECT_EQ(f.result(), 11);
}

// future::request_stop on a running stop_token task requests stop on its token; the task sees it
// and returns normally.
TEST(ThreadPoolSubmit, RequestStopReachesARunningTask) {
    muster::thread_pool pool({.max_workers = 1});
    std::latch started(1);
    auto f = pool.submit([&](std::stop_token st) {
        std::latch stopped(1);
        std::stop_callback on_stop(st, [&] { stopped.count_down(); });
        started.count_down();
        stopped.wait();
        return st.stop_requested();
    });
    started.wait();
    EXPECT_TRUE(f.running());
    EXPECT_TRUE(f.request_stop());
    EXPECT_TRUE(f.result());
    EXPECT_FALSE(f.cancelled());
}

// request_stop on a pending task cancels it; on a running task without a stop_token it reports
// false and changes nothing.
TEST(ThreadPoolSubmit, RequestStopOnPendingCancelsAndOnPlainRunningTaskFails) {
    muster::thread_pool pool({.max_workers = 1});
    std::latch started(1);
    std::latch release(1);
    auto plain = pool.submit([&] {
        started.count_down();
        release.wait();
        return 1;
    });
    started.wait();
    auto pending = pool.submit([](std::stop_token) { return 2; });
    EXPECT_TRUE(pending.request_stop());
    EXPECT_TRUE(pending.cancelled());
    EXPECT_FALSE(plain.request_stop());
    EXPECT_FALSE(plain.cancelled());
    release.count_down();
    EXPECT_EQ(plain.result(), 1);
}

// ---- post --------------------------------------------------------------------------------------

// post runs the callable with its arguments, without a future.
TEST(ThreadPoolPost, RunsTheCallable) {
    muster::thread_pool pool({.max_workers = 2});
    std::latch done(3);
    std::atomic<int> sum{0};
    for (int i = 1; i <= 3; ++i)
        pool.post(
            [&](int x) {
                sum.fetch_add(x);
                done.count_down();
            },
            i);
    done.wait();
    EXPECT_EQ(sum.load(), 6);
}

// A posted callable is copied/moved like a submitted one and destroyed exactly once.
TEST(ThreadPoolPost, CallableIsDestroyedOnceAfterRunning) {
    lifetime_counts c;
    {
        muster::thread_pool pool({.max_workers = 1});
        pool.post([t = tracked(c, 1)] { (void)t.value(); });
        pool.wait_idle();
        EXPECT_EQ(c.copies.load(), 0);
        EXPECT_EQ(c.alive(), 0);
    }
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// A posted task that throws is never silent: on_unhandled_exception receives the very exception,
// on the worker thread that ran it, and the worker survives.
TEST(ThreadPoolPost, ThrowingPostedTaskReachesTheHandler) {
    unhandled_log log;
    std::latch reported(1);
    log.reported = &reported;
    muster::thread_pool pool({.max_workers = 1, .on_unhandled_exception = log.handler()});
    pool.post([] { throw std::logic_error("posted failure"); });
    reported.wait();
    std::thread::id const worker = pool.submit([] { return std::this_thread::get_id(); }).result();
    auto const errors = log.errors();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(message_of(errors[0]), "posted failure");
    EXPECT_THROW(std::rethrow_exception(errors[0]), std::logic_error);
    EXPECT_EQ(log.threads().at(0), worker);
}

// Without a handler, a posted task's exception is printed to stderr.
TEST(ThreadPoolPost, DefaultHandlerPrintsToStderr) {
    testing::internal::CaptureStderr();
    {
        muster::thread_pool pool({.max_workers = 1});
        pool.post([] { throw std::runtime_error("lost-and-found 3141"); });
        pool.wait_idle();
    }
    std::string const err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("lost-and-found 3141"), std::string::npos) << err;
    EXPECT_NE(err.find("muster"), std::string::npos) << err;
}

// W2: a throwing on_unhandled_exception handler does not kill the worker; both exceptions are
// printed to stderr instead.
TEST(ThreadPoolPost, ThrowingHandlerIsReportedAndWorkerSurvives_W2) {
    testing::internal::CaptureStderr();
    {
        muster::thread_pool pool(
            {.max_workers = 1, .on_unhandled_exception = [](std::exception_ptr) {
                 throw std::runtime_error("handler broke 2718");
             }});
        pool.post([] { throw std::runtime_error("task broke 1618"); });
        pool.wait_idle();
        EXPECT_EQ(pool.submit([] { return 5; }).result(), 5);
    }
    std::string const err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("task broke 1618"), std::string::npos) << err;
    EXPECT_NE(err.find("handler broke 2718"), std::string::npos) << err;
}

// W2: a throwing done-callback goes to the pool's handler and does not stop the worker.
TEST(ThreadPoolPost, ThrowingDoneCallbackReachesThePoolHandler_W2) {
    unhandled_log log;
    muster::thread_pool pool({.max_workers = 1, .on_unhandled_exception = log.handler()});
    muster_test::worker_hold hold(pool);
    auto f = pool.submit([] { return 1; });
    std::atomic<int> later_callback{0};
    f.add_done_callback(
        [](const muster::future<int>&) { throw std::runtime_error("callback failed"); });
    f.add_done_callback([&](const muster::future<int>&) { later_callback.fetch_add(1); });
    hold.release();
    EXPECT_EQ(f.result(), 1);
    pool.wait_idle();
    EXPECT_EQ(later_callback.load(), 1);
    auto const errors = log.errors();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(message_of(errors[0]), "callback failed");
}
