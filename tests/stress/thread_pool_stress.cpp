// thread_pool stress tests, in crossbeam's vocabulary: smoke, stampede, stress, no_starvation,
// destructors.
//
// Work scales with the environment variable MUSTER_STRESS_SCALE (default 1) and is divided by 10
// under ThreadSanitizer. Everything is checked by counting: per-task run counters (no task runs
// twice, none is lost), per-future completion callbacks (every future ends exactly once), and
// lifetime counters (every callable and every result is destroyed exactly once).
//
// Python reference items: 22 (a done-callback runs exactly once), 38 (no lost completions under
// heavy concurrent completion), 63 (submit after shutdown raises), 66/68 (shutdown drains or
// cancels; every future ends), 71 (callables are released), 76 (never more than max_workers),
// 100 (a dropped pool finishes its work), W11, W13.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <memory>
#include <muster/muster.hpp>
#include <optional>
#include <random>
#include <ranges>
#include <thread>
#include <utility>
#include <vector>

#include "pool_test_support.hpp"

using muster_test::concurrency_meter;
using muster_test::lifetime_counts;
using muster_test::stress_count;
using muster_test::tracked;

namespace {
/// A liveness bound for waits that must finish: far above any legitimate duration, so a failure
/// means a hang, never slowness.
constexpr auto liveness_bound = std::chrono::seconds(60);

bool finishes(const auto& fut) { return fut.wait_for(liveness_bound) == std::future_status::ready; }
}  // namespace

// smoke: many tiny tasks from one thread, plus fire-and-forget ones; every result is right.
TEST(ThreadPoolStress, Smoke) {
    std::size_t const n = stress_count(20000);
    muster::thread_pool pool({.max_workers = 4});
    std::atomic<std::size_t> posted{0};
    std::vector<muster::future<std::size_t>> fs;
    fs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        fs.push_back(pool.submit([i] { return i * 2; }));
        if (i % 4 == 0) pool.post([&posted] { posted.fetch_add(1, std::memory_order_relaxed); });
    }
    for (std::size_t i = 0; i < n; ++i) {
        ASSERT_TRUE(finishes(fs[i])) << i;
        ASSERT_EQ(fs[i].result(), i * 2);
    }
    pool.wait_idle();
    EXPECT_EQ(posted.load(), (n + 3) / 4);
    EXPECT_EQ(pool.stats().completed, n + (n + 3) / 4);
}

// stampede: several producers start at the same instant on a fresh pool (lazy worker start races
// with every submission); the worker count and the peak concurrency never exceed max_workers.
TEST(ThreadPoolStress, Stampede) {
    constexpr int producers = 4;
    constexpr std::size_t max_workers = 3;
    std::size_t const per_producer = stress_count(20000);
    for (int round = 0; round < 3; ++round) {
        muster::thread_pool pool({.max_workers = max_workers});
        concurrency_meter meter;
        std::latch go(producers);
        std::vector<std::vector<muster::future<std::uint64_t>>> fs(producers);
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p)
            threads.emplace_back([&, p] {
                fs[p].reserve(per_producer);
                go.arrive_and_wait();
                for (std::size_t i = 0; i < per_producer; ++i)
                    fs[p].push_back(pool.submit([&meter, p, i] {
                        auto in = meter.enter();
                        return (static_cast<std::uint64_t>(p) << 32) | i;
                    }));
            });
        for (auto& t : threads) t.join();
        for (int p = 0; p < producers; ++p)
            for (std::size_t i = 0; i < per_producer; ++i) {
                ASSERT_TRUE(finishes(fs[p][i]));
                ASSERT_EQ(fs[p][i].result(), (static_cast<std::uint64_t>(p) << 32) | i);
            }
        EXPECT_LE(meter.peak(), static_cast<int>(max_workers));
        EXPECT_LE(pool.stats().workers, max_workers);
    }
}

namespace {
/// Shared state of one Stress run: per-task counters indexed by a global task number.
struct stress_state {
    explicit stress_state(std::size_t capacity) : runs(capacity), ended(capacity) {}
    std::vector<std::atomic<int>> runs;   // times the task body ran
    std::vector<std::atomic<int>> ended;  // times the future's done-callback ran
    std::atomic<std::size_t> next{0};     // next task number
    lifetime_counts callables;
    lifetime_counts results;
};

struct accepted_task {
    std::size_t index;
    muster::future<tracked> future;
};

/// One producer: submits until the pool refuses (shutdown_error) or `quota` is reached; cancels
/// a random earlier future now and then. The producer whose submission is number `halfway`
/// counts `reached_halfway` down. Returns whether the pool refused it.
bool produce(muster::thread_pool& pool, stress_state& st, std::size_t quota, std::uint32_t seed,
             std::atomic<std::size_t>& accepted_total, std::size_t halfway,
             std::latch& reached_halfway, std::vector<accepted_task>& out) {
    std::mt19937 rng(seed);
    for (std::size_t k = 0; k < quota; ++k) {
        std::size_t const i = st.next.fetch_add(1, std::memory_order_relaxed);
        int const value = static_cast<int>(i);
        try {
            auto f = pool.submit([&st, i, t = tracked(st.callables, value)] {
                st.runs[i].fetch_add(1, std::memory_order_relaxed);
                return tracked(st.results, t.value());
            });
            f.add_done_callback([&st, i](const muster::future<tracked>&) {
                st.ended[i].fetch_add(1, std::memory_order_relaxed);
            });
            out.push_back({i, std::move(f)});
        } catch (const muster::shutdown_error&) {
            return true;
        }
        if (accepted_total.fetch_add(1, std::memory_order_relaxed) + 1 == halfway)
            reached_halfway.count_down();
        if (rng() % 8 == 0 && !out.empty()) (void)out[rng() % out.size()].future.cancel();
    }
    return false;
}

void run_stress(muster::shutdown_options first_shutdown) {
    constexpr int producers = 4;
    std::size_t const total = stress_count(1000000);  // a million per run at scale 1
    // Each producer may submit up to `total` tasks, but the pool is shut down once `total / 2`
    // were accepted, so every producer is refused long before its quota.
    std::size_t const quota = total;
    auto st = std::make_unique<stress_state>(quota * producers);
    std::vector<std::vector<accepted_task>> accepted(producers);
    std::vector<char> refused(producers, 0);
    {
        muster::thread_pool pool({.max_workers = 3});
        std::atomic<std::size_t> accepted_total{0};
        std::latch reached_halfway(1);
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p)
            threads.emplace_back([&, p] {
                refused[p] = produce(pool, *st, quota, 1234u + static_cast<std::uint32_t>(p),
                                     accepted_total, total / 2, reached_halfway, accepted[p])
                                 ? 1
                                 : 0;
            });
        // Shut down in the middle of the submissions.
        reached_halfway.wait();
        pool.shutdown(first_shutdown);
        EXPECT_THROW((void)pool.submit([] {}), muster::shutdown_error);
        pool.shutdown({.wait = true});
        for (auto& t : threads) t.join();

        std::size_t finished = 0;
        std::size_t cancelled = 0;
        std::size_t n = 0;
        for (int p = 0; p < producers; ++p) {
            EXPECT_TRUE(refused[p]) << "producer " << p << " was never refused";
            for (auto& [i, f] : accepted[p]) {
                ++n;
                ASSERT_TRUE(f.done()) << "task " << i << " is not done after shutdown(wait)";
                ASSERT_EQ(st->ended[i].load(), 1)
                    << "task " << i << " ended " << st->ended[i].load() << " times";
                if (f.cancelled()) {
                    ++cancelled;
                    ASSERT_EQ(st->runs[i].load(), 0) << "cancelled task " << i << " ran";
                } else {
                    ++finished;
                    ASSERT_EQ(st->runs[i].load(), 1)
                        << "task " << i << " ran " << st->runs[i].load() << " times";
                    ASSERT_EQ(f.result().value(), static_cast<int>(i));
                }
            }
        }
        EXPECT_EQ(finished + cancelled, n);
        EXPECT_GE(n, total / 2);
        // Task numbers that were refused never ran.
        std::size_t ran = 0;
        for (std::size_t i = 0; i < st->next.load(); ++i)
            ran += static_cast<std::size_t>(st->runs[i].load());
        EXPECT_EQ(ran, finished);
        auto const s = pool.stats();
        EXPECT_EQ(s.completed, finished);
        EXPECT_EQ(s.failed, 0u);
        EXPECT_EQ(s.workers, 0u);
    }
    accepted.clear();  // drop every future
    EXPECT_EQ(st->callables.alive(), 0);
    EXPECT_EQ(st->results.alive(), 0);
    EXPECT_EQ(st->callables.double_destroyed.load(), 0);
    EXPECT_EQ(st->results.double_destroyed.load(), 0);
    EXPECT_EQ(st->results.copies.load(), 0);
}
}  // namespace

// stress: producers submit tiny tasks with random cancels, and the pool is shut down in the
// middle: every future ends exactly once (finished or cancelled), no task runs twice, none is
// lost, submits after the shutdown throw shutdown_error, and every callable and result is
// destroyed exactly once.
TEST(ThreadPoolStress, Stress) { run_stress({.wait = false}); }

// The same with shutdown(cancel_pending): the tasks still queued at that moment are cancelled by
// the pool, and they too end exactly once.
TEST(ThreadPoolStress, StressWithCancelPending) {
    run_stress({.wait = false, .cancel_pending = true});
}

// no_starvation: while every worker keeps feeding its own deque (each task submits its successor
// from inside), tasks submitted from outside are still served.
TEST(ThreadPoolStress, NoStarvation) {
    constexpr std::size_t workers = 2;
    std::size_t const external = stress_count(500);
    muster::thread_pool pool({.max_workers = workers});
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> chain_steps{0};
    struct chain {
        static void step(muster::thread_pool& pool, std::atomic<bool>& stop,
                         std::atomic<std::uint64_t>& steps) {
            steps.fetch_add(1, std::memory_order_relaxed);
            if (!stop.load(std::memory_order_relaxed))
                pool.post([&pool, &stop, &steps] { step(pool, stop, steps); });
        }
    };
    std::latch chains_started(workers);
    for (std::size_t c = 0; c < workers; ++c)
        pool.post([&] {
            chains_started.count_down();
            chain::step(pool, stop, chain_steps);
        });
    chains_started.wait();
    std::uint64_t const steps_before = chain_steps.load();
    bool served = true;
    for (std::size_t i = 0; i < external; ++i) {
        auto f = pool.submit([i] { return i; });
        if (!finishes(f)) {
            served = false;
            ADD_FAILURE() << "external task " << i << " was never served";
            break;
        }
        EXPECT_EQ(f.result(), i);
    }
    std::uint64_t const steps_after = chain_steps.load();
    stop = true;
    pool.wait_idle();
    EXPECT_TRUE(served);
    EXPECT_GT(steps_after, steps_before) << "the chains must have kept running meanwhile";
}

// destructors: pools are created and destroyed with work in flight, futures dropped early or kept
// past the pool, tasks submitting children, map ranges outliving the pool, and a pool destroyed
// from inside its own task. Every callable and every result is destroyed exactly once.
TEST(ThreadPoolStress, Destructors) {
    std::size_t const rounds = stress_count(200);
    lifetime_counts callables;
    lifetime_counts results;
    std::mt19937 rng(42);
    std::atomic<int> children_ran{0};
    int children_expected = 0;
    std::vector<std::pair<int, muster::future<tracked>>> kept;  // expected value, future
    for (std::size_t round = 0; round < rounds; ++round) {
        std::size_t const workers = 1 + rng() % 4;
        std::size_t const tasks = 50 + rng() % 100;
        std::size_t const kept_before = kept.size();
        if (round % 10 == 9) {
            // Destroyed from inside its own task (W13): the destructor does not wait for the
            // calling task and the last worker frees the scheduler.
            auto pool = std::make_unique<muster::thread_pool>(
                muster::thread_pool_options{.max_workers = workers});
            std::latch gate(1);
            auto killer = pool->submit([&pool, &gate, t = tracked(callables, 0)] {
                gate.wait();
                pool.reset();
                return t.value();
            });
            for (std::size_t i = 0; i < tasks; ++i)
                kept.emplace_back(static_cast<int>(i),
                                  pool->submit([&results, i, t = tracked(callables, 1)] {
                                      return tracked(results, static_cast<int>(i) + t.value() - 1);
                                  }));
            gate.count_down();
            ASSERT_TRUE(finishes(killer));
            EXPECT_EQ(killer.result(), 0);
        } else {
            muster::thread_pool pool({.max_workers = workers});
            for (std::size_t i = 0; i < tasks; ++i) {
                auto f = pool.submit(
                    [&pool, &results, &callables, &children_ran, i, t = tracked(callables, 1)] {
                        if (i % 16 == 0)
                            pool.post([&children_ran, c = tracked(callables, 2)] {
                                if (c.value() == 2) children_ran.fetch_add(1);
                            });
                        return tracked(results, static_cast<int>(i) + t.value() - 1);
                    });
                if (i % 16 == 0) ++children_expected;
                if (rng() % 3 != 0)
                    kept.emplace_back(static_cast<int>(i),
                                      std::move(f));  // else dropped while pending
            }
            if (round % 5 == 0) {
                auto r = pool.map([&results](int x) { return tracked(results, x); },
                                  std::views::iota(0, 8), {.buffersize = 8});
                int expect = 0;
                for (auto& v : r) EXPECT_EQ(v.value(), expect++);
            }
        }  // the pool is destroyed here (or already was, from inside its task)
        for (std::size_t k = kept_before; k < kept.size(); ++k) {
            ASSERT_TRUE(finishes(kept[k].second));
            EXPECT_EQ(kept[k].second.result().value(), kept[k].first);
        }
        if (kept.size() > 2000) kept.clear();
    }
    kept.clear();
    EXPECT_EQ(children_ran.load(), children_expected);
    // Pools destroyed from inside their own task are freed by their last worker thread, which
    // may still be on its way out; wait for that (a liveness bound, not a timing assertion).
    EXPECT_TRUE(muster_test::poll_until(
        [&] { return callables.alive() == 0 && results.alive() == 0; }, std::chrono::seconds(30)));
    EXPECT_EQ(callables.double_destroyed.load(), 0);
    EXPECT_EQ(results.double_destroyed.load(), 0);
    EXPECT_EQ(results.copies.load(), 0);
}
