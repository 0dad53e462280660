// thread_pool initializer: runs once per worker before its tasks; a throwing initializer breaks
// the pool.
//
// Python reference items: 13 (broken_pool is a library error), 64 (broken is reported before
// shut down), 73 (initializer runs once per worker, tasks see its effect), 74 (a failing
// initializer breaks the pool and is reported), 80 (only queued tasks are affected), W9 (each
// broken future gets its own exception object).

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <exception>
#include <functional>
#include <latch>
#include <muster/muster.hpp>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool_test_support.hpp"
#include "unhandled_log.hpp"

namespace {
using muster_test::message_of;
using muster_test::unhandled_log;

thread_local int tls_initialised = 0;

}  // namespace

// Item 73 (test_initializer): the initializer runs once in each worker, before that worker's
// first task, and tasks see its effect (a thread_local it set).
TEST(ThreadPoolInitializer, RunsOncePerWorkerBeforeTasks_Item73) {
    constexpr int n = 3;
    std::atomic<int> calls{0};
    muster::thread_pool pool({.max_workers = n, .initializer = [&] {
                                  EXPECT_EQ(tls_initialised, 0);  // once per thread
                                  tls_initialised = 42;
                                  calls.fetch_add(1);
                              }});
    std::barrier meet(n);  // all three workers must exist
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < n; ++i)
        fs.push_back(pool.submit([&] {
            meet.arrive_and_wait();
            return tls_initialised;
        }));
    for (int i = 0; i < 60; ++i) fs.push_back(pool.submit([] { return tls_initialised; }));
    for (auto& f : fs) EXPECT_EQ(f.result(), 42);
    EXPECT_EQ(calls.load(), n);
    EXPECT_EQ(pool.stats().workers, static_cast<std::size_t>(n));
    EXPECT_EQ(tls_initialised, 0);  // never run on the submitting thread
}

// Items 74, 64, W9: a throwing initializer breaks the pool. The futures queued behind it fail
// with broken_pool, each with its own exception object; the handler receives the initializer's
// own exception once; later submit/post/map throw broken_pool, also after shutdown() (broken is
// checked before shut down).
TEST(ThreadPoolInitializer, ThrowingInitializerBreaksThePool_Item74_Item64_W9) {
    std::latch let_it_throw(1);
    unhandled_log log;
    muster::thread_pool pool({.max_workers = 1,
                              .initializer =
                                  [&] {
                                      let_it_throw.wait();
                                      throw std::runtime_error("initializer exploded");
                                  },
                              .on_unhandled_exception = log.handler()});
    std::atomic<int> ran{0};
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < 3; ++i)
        fs.push_back(pool.submit([&ran, i] {
            ran.fetch_add(1);
            return i;
        }));
    let_it_throw.count_down();

    std::vector<std::exception_ptr> errors;
    for (auto& f : fs) {
        EXPECT_THROW(f.result(), muster::broken_pool);
        errors.push_back(f.exception());
        ASSERT_TRUE(errors.back());
    }
    EXPECT_NE(errors[0], errors[1]);
    EXPECT_NE(errors[1], errors[2]);
    EXPECT_NE(errors[0], errors[2]);
    EXPECT_EQ(ran.load(), 0);

    auto const reported = log.errors();
    ASSERT_EQ(reported.size(), 1u);
    EXPECT_EQ(message_of(reported[0]), "initializer exploded");
    EXPECT_THROW(std::rethrow_exception(reported[0]), std::runtime_error);

    EXPECT_THROW((void)pool.submit([] { return 0; }), muster::broken_pool);
    EXPECT_THROW(pool.post([] {}), muster::broken_pool);
    std::vector<int> input{1, 2, 3};
    EXPECT_THROW((void)pool.map([](int x) { return x; }, input), muster::broken_pool);
    pool.shutdown();
    // Item 64: still broken_pool, not shutdown_error.
    EXPECT_THROW((void)pool.submit([] { return 0; }), muster::broken_pool);
    EXPECT_THROW(pool.post([] {}), muster::broken_pool);
    EXPECT_EQ(ran.load(), 0);
}

// Item 13: broken_pool is part of the muster::error family; its message says what broke.
TEST(ThreadPoolInitializer, BrokenPoolMessageNamesTheCause_Item13) {
    muster::thread_pool pool({.max_workers = 1,
                              .initializer = [] { throw std::runtime_error("no database"); },
                              .on_unhandled_exception = [](std::exception_ptr) {}});
    auto f = pool.submit([] { return 1; });
    try {
        (void)f.result();
        FAIL() << "expected broken_pool";
    } catch (const muster::error& e) {
        EXPECT_NE(dynamic_cast<const muster::broken_pool*>(&e), nullptr);
        EXPECT_NE(std::string(e.what()).find("no database"), std::string::npos) << e.what();
    }
}

// Item 80: an initializer failure affects only queued tasks; a task already running on another
// worker completes normally.
TEST(ThreadPoolInitializer, RunningTasksFinishWhenAnotherInitializerFails_Item80) {
    std::atomic<int> inits{0};
    unhandled_log log;
    muster::thread_pool pool({.max_workers = 2,
                              .initializer =
                                  [&] {
                                      if (inits.fetch_add(1) == 1)
                                          throw std::runtime_error("second worker cannot start");
                                  },
                              .on_unhandled_exception = log.handler()});
    std::latch started(1);
    std::latch release(1);
    auto running = pool.submit([&] {
        started.count_down();
        release.wait();
        return 17;
    });
    started.wait();
    // The only worker is busy, so this submit starts the second worker, whose initializer throws.
    auto queued = pool.submit([] { return 18; });
    EXPECT_THROW(queued.result(), muster::broken_pool);
    EXPECT_FALSE(running.done());
    release.count_down();
    EXPECT_EQ(running.result(), 17);
    EXPECT_EQ(log.size(), 1u);
    EXPECT_THROW((void)pool.submit([] { return 0; }), muster::broken_pool);
}

// Item 74: without a handler, the initializer's failure is printed to stderr (never silent).
TEST(ThreadPoolInitializer, DefaultHandlerPrintsInitializerFailure_Item74) {
    testing::internal::CaptureStderr();
    {
        muster::thread_pool pool(
            {.max_workers = 1, .initializer = [] { throw std::runtime_error("bad init 1234"); }});
        auto f = pool.submit([] { return 1; });
        EXPECT_THROW(f.result(), muster::broken_pool);
    }
    std::string const err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("bad init 1234"), std::string::npos) << err;
}
