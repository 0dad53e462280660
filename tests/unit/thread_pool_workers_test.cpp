// thread_pool workers: lazy start, the max_workers bound, idle reuse, thread names, keep_alive
// and min_workers.
//
// Python reference items: 76 (lazy threads, saturation bound), 77 (idle thread reuse), 78 (thread
// names), 79 (workers exit after shutdown), W11 (one consistent count of live/idle workers).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <latch>
#include <muster/muster.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pool_test_support.hpp"

using namespace std::chrono_literals;
using muster_test::concurrency_meter;
using muster_test::poll_until;

// Item 76: no thread exists before the first submit, even with min_workers > 0 (those start
// lazily too).
TEST(ThreadPoolWorkers, NoThreadBeforeFirstSubmit_Item76) {
    muster::thread_pool pool({.max_workers = 4, .min_workers = 2, .name_prefix = "lazy"});
    EXPECT_EQ(pool.stats().workers, 0u);
    EXPECT_EQ(muster_test::count_threads_named("lazy_"), 0);
    EXPECT_EQ(pool.submit([] { return 1; }).result(), 1);
    EXPECT_GE(pool.stats().workers, 1u);
    EXPECT_GE(muster_test::count_threads_named("lazy_"), 1);
}

// Item 76 (ThreadPoolExecutorTest::test_saturation): 15x more blocked tasks than max_workers
// never start more than max_workers threads, and exactly max_workers tasks run at once.
TEST(ThreadPoolWorkers, SaturationNeverExceedsMaxWorkers_Item76) {
    constexpr int max_workers = 4;
    constexpr int tasks = 15 * max_workers;
    muster::thread_pool pool({.max_workers = max_workers, .name_prefix = "sat"});
    concurrency_meter meter;
    std::atomic<int> started{0};
    std::latch all_workers_busy(max_workers);
    std::latch gate(1);
    std::vector<muster::future<void>> fs;
    for (int i = 0; i < tasks; ++i) {
        fs.push_back(pool.submit([&] {
            auto in = meter.enter();
            if (started.fetch_add(1) < max_workers) all_workers_busy.count_down();
            gate.wait();
        }));
    }
    all_workers_busy.wait();
    // Every worker is blocked on the gate: the pool is saturated.
    auto const s = pool.stats();
    EXPECT_EQ(s.workers, static_cast<std::size_t>(max_workers));
    EXPECT_EQ(s.running, static_cast<std::size_t>(max_workers));
    EXPECT_EQ(meter.now(), max_workers);
    EXPECT_EQ(muster_test::count_threads_named("sat_"), max_workers);
    gate.count_down();
    for (auto& f : fs) f.result();
    EXPECT_EQ(meter.peak(), max_workers);
    EXPECT_EQ(started.load(), tasks);
    EXPECT_LE(pool.stats().workers, static_cast<std::size_t>(max_workers));
}

// Item 77 (test_idle_thread_reuse, bpo-24882): submitting and waiting three times in a row uses
// one thread. Before each submit the test waits until the worker has parked, so the worker is
// idle (not merely finishing its previous task) when the next task arrives.
TEST(ThreadPoolWorkers, IdleWorkerIsReused_Item77) {
    muster::thread_pool pool({.max_workers = 4});
    std::set<std::thread::id> threads;
    for (int i = 0; i < 3; ++i) {
        threads.insert(pool.submit([] { return std::this_thread::get_id(); }).result());
        ASSERT_TRUE(muster_test::wait_all_parked(pool));
        EXPECT_EQ(pool.stats().workers, 1u);
    }
    EXPECT_EQ(threads.size(), 1u);
    EXPECT_EQ(pool.stats().workers, 1u);
}

// Item 78 (test_thread_names_assigned): workers are named `<prefix>_<i>`, i = 0..max_workers-1 in
// creation order. A barrier inside the tasks forces all three workers to exist.
TEST(ThreadPoolWorkers, ThreadNamesUsePrefixAndIndex_Item78) {
    constexpr int n = 3;
    muster::thread_pool pool({.max_workers = n, .name_prefix = "tp-names"});
    std::barrier meet(n);
    std::vector<muster::future<std::string>> fs;
    for (int i = 0; i < n; ++i)
        fs.push_back(pool.submit([&] {
            meet.arrive_and_wait();
            return muster_test::current_thread_name();
        }));
    std::set<std::string> names;
    for (auto& f : fs) names.insert(f.result());
    EXPECT_EQ(names, (std::set<std::string>{"tp-names_0", "tp-names_1", "tp-names_2"}));
}

namespace {
/// Whether `name` is `muster-<digits>_0`.
bool is_default_first_worker_name(const std::string& name) {
    std::string const head = "muster-";
    std::string const tail = "_0";
    if (name.size() <= head.size() + tail.size() || name.rfind(head, 0) != 0) return false;
    if (name.compare(name.size() - tail.size(), tail.size(), tail) != 0) return false;
    std::string const k = name.substr(head.size(), name.size() - head.size() - tail.size());
    return std::all_of(k.begin(), k.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

// Item 78 (test_thread_names_default): the default prefix is `muster-<k>` with k from a
// process-wide counter, so two pools never share names.
TEST(ThreadPoolWorkers, DefaultThreadNamesStartWithMuster_Item78) {
    muster::thread_pool a({.max_workers = 1});
    muster::thread_pool b({.max_workers = 1});
    std::string const na = a.submit([] { return muster_test::current_thread_name(); }).result();
    std::string const nb = b.submit([] { return muster_test::current_thread_name(); }).result();
    EXPECT_TRUE(is_default_first_worker_name(na)) << na;
    EXPECT_TRUE(is_default_first_worker_name(nb)) << nb;
    EXPECT_NE(na, nb);
}

// Item 79 (test_threads_terminate): after shutdown(wait=true) no worker is left, and the threads
// are gone from the process.
TEST(ThreadPoolWorkers, WorkersExitAfterShutdown_Item79) {
    muster::thread_pool pool({.max_workers = 3, .name_prefix = "leaving"});
    std::barrier meet(3);
    std::vector<muster::future<void>> fs;
    for (int i = 0; i < 3; ++i) fs.push_back(pool.submit([&] { meet.arrive_and_wait(); }));
    for (auto& f : fs) f.result();
    EXPECT_EQ(pool.stats().workers, 3u);
    EXPECT_EQ(muster_test::count_threads_named("leaving_"), 3);
    pool.shutdown();
    EXPECT_EQ(pool.stats().workers, 0u);
    EXPECT_EQ(muster_test::count_threads_named("leaving_"), 0);
}

// keep_alive with min_workers = 0: after the work, idle workers leave, down to none; the pool
// starts a new one for later work.
TEST(ThreadPoolWorkers, KeepAliveShrinksToZeroWorkers) {
    muster::thread_pool pool({.max_workers = 2, .min_workers = 0, .keep_alive = 20ms});
    std::barrier meet(2);
    auto f1 = pool.submit([&] { meet.arrive_and_wait(); });
    auto f2 = pool.submit([&] { meet.arrive_and_wait(); });
    f1.result();
    f2.result();
    EXPECT_EQ(pool.stats().workers, 2u);
    EXPECT_TRUE(poll_until([&] { return pool.stats().workers == 0; }))
        << "workers left: " << pool.stats().workers;
    EXPECT_EQ(pool.submit([] { return 7; }).result(), 7);
}

// keep_alive with min_workers = 1: the pool shrinks to one worker and keeps it. The second
// phase watches the count for ten keep_alive periods: a pool that shrank below the minimum
// would show 0 there.
TEST(ThreadPoolWorkers, KeepAliveKeepsMinWorkers) {
    muster::thread_pool pool({.max_workers = 2, .min_workers = 1, .keep_alive = 20ms});
    std::barrier meet(2);
    auto f1 = pool.submit([&] { meet.arrive_and_wait(); });
    auto f2 = pool.submit([&] { meet.arrive_and_wait(); });
    f1.result();
    f2.result();
    EXPECT_EQ(pool.stats().workers, 2u);
    EXPECT_TRUE(poll_until([&] { return pool.stats().workers == 1; }))
        << "workers: " << pool.stats().workers;
    bool const dropped = poll_until([&] { return pool.stats().workers != 1; }, 200ms);
    EXPECT_FALSE(dropped) << "workers: " << pool.stats().workers;
    EXPECT_EQ(pool.submit([] { return 9; }).result(), 9);
}

// W11: the counters agree with each other in a quiet pool: every live worker is idle.
TEST(ThreadPoolWorkers, StatsOfAQuietPoolAreConsistent_W11) {
    muster::thread_pool pool({.max_workers = 2});
    std::barrier meet(2);
    auto f1 = pool.submit([&] { meet.arrive_and_wait(); });
    auto f2 = pool.submit([&] { meet.arrive_and_wait(); });
    f1.result();
    f2.result();
    ASSERT_TRUE(muster_test::wait_all_parked(pool));
    auto const s = pool.stats();
    EXPECT_EQ(s.workers, 2u);
    EXPECT_EQ(s.idle, 2u);
    EXPECT_EQ(s.running, 0u);
    EXPECT_EQ(s.queued, 0u);
    EXPECT_EQ(s.completed, 2u);
}
