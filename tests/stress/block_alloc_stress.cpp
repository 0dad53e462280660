// Stress for the task-block allocator (docs/design/allocator.md): short-lived producer threads
// submit tasks of every size class (and larger) and exit while their tasks are still queued,
// running, or held by futures other threads drop; workers, the producers themselves, other
// producers and the main thread all free blocks, and tasks submit children from the workers.
//
// Work scales with MUSTER_STRESS_SCALE (divided by 10 under ThreadSanitizer). Checked by
// counting: every task runs once, every result is right, every capture is destroyed exactly once,
// and afterwards no cache or depot holds more than its bound. The sanitizer builds check the
// rest: a block used after its free (ASan poisons cached blocks), a leaked block (LeakSanitizer),
// a hand-off between threads without happens-before (TSan).

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <muster/muster.hpp>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "pool_test_support.hpp"

namespace md = muster::detail;
using muster_test::lifetime_counts;
using muster_test::stress_count;
using muster_test::tracked;

namespace {

constexpr auto liveness_bound = std::chrono::seconds(120);

/// Futures handed from producers to whoever drops them, with the value each must hold.
struct handoff {
    std::mutex mu;
    std::vector<std::pair<muster::future<std::size_t>, std::size_t>> futures;

    void put(muster::future<std::size_t> f, std::size_t expected) {
        std::lock_guard lock(mu);
        futures.emplace_back(std::move(f), expected);
    }
    std::vector<std::pair<muster::future<std::size_t>, std::size_t>> take() {
        std::lock_guard lock(mu);
        return std::exchange(futures, {});
    }
};

struct counters {
    std::atomic<std::size_t> ran{0};
    std::atomic<std::size_t> wrong{0};
    std::atomic<std::size_t> unfinished{0};
};

/// Checks and drops handed-off futures (their blocks are freed here unless a worker still holds
/// a reference).
void drain(handoff& h, counters& c) {
    for (auto& [f, expected] : h.take()) {
        if (f.wait_for(liveness_bound) != std::future_status::ready) {
            c.unfinished.fetch_add(1);
            continue;
        }
        if (f.result() != expected) c.wrong.fetch_add(1);
    }
}

/// A task whose capture is N words (plus a reference), so its block falls in a chosen size
/// class; it returns `v`, kept in the last word.
template <std::size_t N>
auto padded_task(counters& c, std::size_t v) {
    std::array<std::uint64_t, N> pad{};
    pad[N - 1] = v;
    return [&c, pad] {
        c.ran.fetch_add(1, std::memory_order_relaxed);
        return std::size_t(pad[N - 1]);
    };
}

/// One producer's work: `n` tasks cycling through the size classes and the fallback.
void produce(muster::thread_pool& pool, std::size_t id, std::size_t n, handoff& h, counters& c,
             lifetime_counts& lives) {
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t const v = id * 1'000'000 + i;
        switch (i % 6) {
            case 0:  // 64-byte class, fire-and-forget: freed on the worker
                pool.post([&c] { c.ran.fetch_add(1, std::memory_order_relaxed); });
                break;
            case 1:  // 128-byte class; the future is dropped at once (the block is freed on
                     // a worker or here, whoever is last)
                (void)pool.submit(padded_task<8>(c, v));
                break;
            case 2:  // 192- and 256-byte classes, handed to another thread to drop
                if ((i / 6) % 2 == 0) h.put(pool.submit(padded_task<16>(c, v)), v);
                else h.put(pool.submit(padded_task<24>(c, v)), v);
                break;
            case 3:  // 96-byte class, a counted capture: destroyed exactly once, whoever frees
                     // the block
                h.put(pool.submit([&c, t = tracked(lives, int(i % 1000))] {
                    c.ran.fetch_add(1, std::memory_order_relaxed);
                    return std::size_t(t.value());
                }),
                      i % 1000);
                break;
            case 4:  // larger than every class: operator new
                h.put(pool.submit(padded_task<64>(c, v)), v);
                break;
            default:  // a task that posts a child: allocated on a worker, freed on a worker
                pool.post([&pool, &c] {
                    c.ran.fetch_add(1, std::memory_order_relaxed);
                    pool.post([&c] { c.ran.fetch_add(1, std::memory_order_relaxed); });
                });
                break;
        }
    }
}

/// Tasks that run per produced task (the last kind runs two).
std::size_t runs_for(std::size_t n) {
    std::size_t runs = n;
    for (std::size_t i = 5; i < n; i += 6) ++runs;
    return runs;
}

}  // namespace

// Waves of producers start, submit and exit while the workers are still busy with their tasks;
// the next wave starts before the previous one's tasks have finished.
TEST(BlockAllocStress, ProducersComeAndGo) {
    std::size_t const waves = 10;
    std::size_t const producers = 6;
    std::size_t const per_producer = stress_count(10'000);
    lifetime_counts lives;
    counters c;
    handoff h;
    {
        muster::thread_pool pool({.max_workers = 3});
        for (std::size_t w = 0; w < waves; ++w) {
            std::latch go{std::ptrdiff_t(producers)};
            std::vector<std::thread> threads;
            for (std::size_t p = 0; p < producers; ++p)
                threads.emplace_back([&, p, w] {
                    go.arrive_and_wait();
                    produce(pool, w * producers + p, per_producer, h, c, lives);
                    // The even ones also drop what the others handed off so far: frees on a
                    // producer that exits right after.
                    if (p % 2 == 0) drain(h, c);
                });
            for (auto& t : threads) t.join();
            drain(h, c);
        }
        pool.wait_idle();
    }
    EXPECT_EQ(c.ran.load(), waves * producers * runs_for(per_producer));
    EXPECT_EQ(c.wrong.load(), 0u);
    EXPECT_EQ(c.unfinished.load(), 0u);
    EXPECT_EQ(lives.alive(), 0);
    EXPECT_EQ(lives.double_destroyed.load(), 0);

    auto const s = md::block_pool_snapshot();
    for (std::size_t k = 0; k < md::block_class_count; ++k)
        EXPECT_LE(s.depot_blocks[k], md::block_depot_magazines * md::block_magazine_size(k)) << k;
    auto const mine = md::this_thread_block_stats();
    for (std::size_t k = 0; k < md::block_class_count; ++k)
        EXPECT_LE(mine.cached[k], md::block_cache_bound(k)) << k;
}

// Producers that never free anything (post only) against workers that free everything: the
// producers live on the workers' surplus; many short-lived producers in a row.
TEST(BlockAllocStress, ShortLivedPostersOnly) {
    std::size_t const producers = 64;
    std::size_t const per_producer = stress_count(5'000);
    std::atomic<std::size_t> ran{0};
    {
        muster::thread_pool pool({.max_workers = 2});
        for (std::size_t p = 0; p < producers; p += 2) {
            std::thread a([&] {
                for (std::size_t i = 0; i < per_producer; ++i)
                    pool.post([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
            });
            std::thread b([&] {
                for (std::size_t i = 0; i < per_producer; ++i)
                    pool.post([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
            });
            a.join();
            b.join();
        }
        pool.wait_idle();
    }
    EXPECT_EQ(ran.load(), producers * per_producer);
}
