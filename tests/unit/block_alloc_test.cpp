// The task-block allocator (include/muster/detail/block_alloc.hpp, docs/design/allocator.md):
// size classes, reuse, frees on another thread, thread exit with cached blocks, frees after a
// thread's cache was flushed, the bound on what a thread keeps after a burst, and the fallback
// to operator new for large and over-aligned callables.
//
// Everything is observed through the allocator's own statistics (this_thread_block_stats,
// block_pool_snapshot). Tests share one process, so each one compares counters before and after
// its own work.

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <muster/muster.hpp>
#include <thread>
#include <vector>

#include "pool_test_support.hpp"

namespace md = muster::detail;

namespace {

constexpr std::size_t small_class = md::block_class_of(64, 16);
constexpr std::uint32_t small_magazine = md::block_magazine_size(small_class);

void* alloc_small() { return md::allocate_block<64, 16>(); }
void free_small(void* p) { md::deallocate_block<64, 16>(p); }

std::uint64_t fresh_small() { return md::this_thread_block_stats().fresh[small_class]; }
std::size_t cached_small() { return md::this_thread_block_stats().cached[small_class]; }

/// A thread that allocates `n` blocks just after other threads gave at least `n` back needs no
/// fresh memory: with slabs, blocks the full depot refused are in their slabs' free lists. The
/// AddressSanitizer build frees what the depot refuses, so there the thread only needs fewer
/// than `n` fresh blocks (the depot holds at least one block per magazine).
void expect_no_fresh_blocks(std::uint64_t fresh, std::size_t n) {
    if (md::block_pool_snapshot().slabs_enabled)
        EXPECT_EQ(fresh, 0u);
    else
        EXPECT_LT(fresh, n);
}

/// Runs `fn` on a new thread and joins it.
template <class Fn>
void on_new_thread(Fn&& fn) {
    std::thread t(std::forward<Fn>(fn));
    t.join();
}

}  // namespace

TEST(BlockAlloc, ClassesCoverSizeAndAlignment) {
    static_assert(md::block_class_of(56, 8) == 0);
    static_assert(md::block_class_of(64, 16) == 0);
    static_assert(md::block_class_of(64, 64) == 0);
    static_assert(md::block_class_of(72, 8) == 1);
    static_assert(md::block_class_of(96, 32) == 1);
    static_assert(md::block_class_of(96, 64) == 2);  // 96-byte slots are only 32-aligned
    static_assert(md::block_class_of(160, 8) == 3);
    static_assert(md::block_class_of(256, 16) == 4);
    static_assert(md::block_class_of(257, 8) == md::block_oversize);
    static_assert(md::block_class_of(64, 128) == md::block_oversize);
    for (std::size_t k = 0; k < md::block_class_count; ++k) {
        EXPECT_EQ(md::block_class_sizes[k] % md::block_class_align(k), 0u) << k;
        EXPECT_GE(md::block_magazine_size(k), 16u) << k;
    }
}

// A freed block is the next one handed out on the same thread (LIFO), and no fresh memory is
// taken for it.
TEST(BlockAlloc, FreedBlockIsReusedOnTheSameThread) {
    on_new_thread([] {
        void* const a = alloc_small();
        // The first allocation may have refilled the cache with a magazine from the depot.
        std::size_t const cached_before = cached_small();
        std::uint64_t const fresh_before = fresh_small();
        free_small(a);
        EXPECT_EQ(cached_small(), cached_before + 1);
        void* const b = alloc_small();
        EXPECT_EQ(b, a);
        EXPECT_EQ(fresh_small(), fresh_before);
        EXPECT_EQ(cached_small(), cached_before);
        free_small(b);
    });
}

// Blocks allocated on one thread and freed on another go into the freeing thread's cache; its
// surplus travels, a magazine at a time, to a thread that only allocates, which then needs no
// fresh memory.
TEST(BlockAlloc, CrossThreadFreesFeedAnotherThread) {
    std::size_t const n = 6 * small_magazine;
    std::vector<void*> blocks(n);
    on_new_thread([&] {
        for (auto& p : blocks) p = alloc_small();
    });
    on_new_thread([&] {
        for (void* p : blocks) free_small(p);
        auto const s = md::this_thread_block_stats();
        EXPECT_EQ(s.cached[small_class], md::block_cache_bound(small_class));
        EXPECT_EQ(s.magazines_out, n / small_magazine - 2);
    });
    on_new_thread([&] {
        // A thread that never freed anything: every block comes from the depot (or, if the
        // depot was full, from the slabs the surplus went back to).
        for (auto& p : blocks) p = alloc_small();
        auto const s = md::this_thread_block_stats();
        expect_no_fresh_blocks(s.fresh[small_class], n);
        EXPECT_GE(s.magazines_in, 1u);
        for (void* p : blocks) free_small(p);
    });
}

// A thread that exits with cached blocks hands them back: another thread gets them without
// taking fresh memory.
TEST(BlockAlloc, ThreadExitHandsCachedBlocksBack) {
    std::size_t const n = md::block_cache_bound(small_class) - 1;
    on_new_thread([&] {
        std::vector<void*> blocks(n);
        for (auto& p : blocks) p = alloc_small();
        for (void* p : blocks) free_small(p);
        auto const s = md::this_thread_block_stats();
        EXPECT_TRUE(s.registered);
        EXPECT_GT(s.cached[small_class], 0u);
    });
    on_new_thread([&] {
        std::vector<void*> blocks(n);
        for (auto& p : blocks) p = alloc_small();
        expect_no_fresh_blocks(fresh_small(), n);
        for (void* p : blocks) free_small(p);
    });
}

namespace {
/// A thread_local whose destructor frees a block and allocates and frees another one after the
/// allocator's own exit flush (it is constructed before the thread's first allocation, so it is
/// destroyed after the flush).
struct late_user {
    void* block = nullptr;
    std::atomic<bool>* registered_at_exit = nullptr;
    std::atomic<int>* done = nullptr;
    ~late_user() {
        if (done == nullptr) return;
        registered_at_exit->store(md::this_thread_block_stats().registered);
        free_small(block);
        void* const again = alloc_small();
        free_small(again);
        void* const big = md::allocate_block<4096, 16>();
        md::deallocate_block<4096, 16>(big);
        done->fetch_add(1);
    }
};
thread_local late_user t_late_user;
}  // namespace

TEST(BlockAlloc, FreesAfterTheExitFlushGoToTheSharedPool) {
    std::atomic<bool> registered_at_exit{true};
    std::atomic<int> done{0};
    on_new_thread([&] {
        late_user& u = t_late_user;  // constructed first, destroyed last
        u.registered_at_exit = &registered_at_exit;
        u.done = &done;
        u.block = alloc_small();
        EXPECT_TRUE(md::this_thread_block_stats().registered);
    });
    EXPECT_EQ(done.load(), 1);
    EXPECT_FALSE(registered_at_exit.load());
}

// A burst far larger than the cache, freed on one thread, leaves that thread with at most its
// bound, the depot with at most its bound, and gives the rest of the memory back.
TEST(BlockAlloc, BurstLeavesABoundedCache) {
    std::size_t const n = muster_test::under_tsan ? 200'000 : 1'000'000;
    auto const pool_before = md::block_pool_snapshot();
    on_new_thread([&] {
        std::vector<void*> blocks(n);
        for (auto& p : blocks) p = alloc_small();
        for (void* p : blocks) free_small(p);
        EXPECT_LE(cached_small(), md::block_cache_bound(small_class));
    });
    auto const pool_after = md::block_pool_snapshot();
    EXPECT_LE(pool_after.depot_blocks[small_class], md::block_depot_magazines * small_magazine);
    if (pool_after.slabs_enabled) {
        // What stays allocated is what the depot pins (at most a few slabs: blocks are freed in
        // allocation order) and the slabs already there before; never the burst.
        std::size_t const burst_slabs =
            n * md::block_class_sizes[small_class] / pool_after.slab_bytes;
        EXPECT_LE(pool_after.slabs, pool_before.slabs + 4)
            << "burst of " << burst_slabs << " slabs";
    }
}

// The same through a pool: a million posted tasks, freed on the workers; afterwards each
// worker keeps at most its bound.
TEST(BlockAlloc, WorkersKeepABoundedCacheAfterABurst) {
    std::size_t const n = muster_test::under_tsan ? 100'000 : 1'000'000;
    muster::thread_pool pool({.max_workers = 2, .min_workers = 2});
    std::atomic<std::size_t> ran{0};
    for (std::size_t i = 0; i < n; ++i)
        pool.post([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
    pool.wait_idle();
    ASSERT_EQ(ran.load(), n);
    // One task per worker, held until both run, so each reports a different worker's cache.
    muster_test::rendezvous both(2);
    auto report = [&both] {
        bool const met = both.arrive_and_wait();
        return std::pair{met, md::this_thread_block_stats()};
    };
    auto f1 = pool.submit(report);
    auto f2 = pool.submit(report);
    for (auto* f : {&f1, &f2}) {
        if (f->wait_for(std::chrono::seconds(60)) != std::future_status::ready) both.abort();
        auto const [met, s] = f->result();
        EXPECT_TRUE(met);
        for (std::size_t k = 0; k < md::block_class_count; ++k)
            EXPECT_LE(s.cached[k], md::block_cache_bound(k)) << k;
    }
}

// A thread that only posts gets its blocks back from the workers' surplus: over many rounds
// it takes far fewer fresh blocks than it posts.
TEST(BlockAlloc, ProducerReusesBlocksFreedOnWorkers) {
    constexpr std::size_t rounds = 100;
    constexpr std::size_t per_round = 1000;
    muster::thread_pool pool({.max_workers = 2});
    std::atomic<std::size_t> ran{0};
    on_new_thread([&] {
        for (std::size_t r = 0; r < rounds; ++r) {
            for (std::size_t i = 0; i < per_round; ++i)
                pool.post([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
            pool.wait_idle();
        }
        auto const s = md::this_thread_block_stats();
        EXPECT_LT(s.fresh[small_class], rounds * per_round / 4);
        EXPECT_GT(s.magazines_in, 0u);
    });
    EXPECT_EQ(ran.load(), rounds * per_round);
}

// A thread that allocates one block at a time while another thread frees each one (a producer
// posting at a low rate to a worker) reuses the freed blocks as soon as the freeing thread's
// surplus reaches the depot, instead of carving the rest of its slab: each new page it carved
// would be a page fault on the submitting thread (A3e, docs/design/allocator.md). It carves at
// most the three windows it needs before the first magazine comes back, so a few pages, not
// the 4000 blocks (about 60 pages) it allocates.
TEST(BlockAlloc, SlowProducerReusesFreedBlocksBeforeCarvingFreshPages) {
    constexpr std::size_t rounds = 4000;  // fewer than a slab's 4095 blocks of the small class
    std::atomic<void*> slot{nullptr};
    std::thread consumer([&] {
        for (std::size_t i = 0; i < rounds; ++i) {
            slot.wait(nullptr, std::memory_order_acquire);
            free_small(slot.exchange(nullptr, std::memory_order_acq_rel));
            slot.notify_all();
        }
    });
    std::uint64_t fresh = 0;
    on_new_thread([&] {
        for (std::size_t i = 0; i < rounds; ++i) {
            slot.store(alloc_small(), std::memory_order_release);
            slot.notify_all();
            // Wait until the consumer took and freed it: one block in flight at a time.
            for (void* p = slot.load(std::memory_order_acquire); p != nullptr;
                 p = slot.load(std::memory_order_acquire))
                slot.wait(p, std::memory_order_acquire);
        }
        fresh = fresh_small();
    });
    consumer.join();
    EXPECT_LE(fresh, 4u * small_magazine) << "fresh blocks carved for " << rounds
                                          << " allocations with one block in flight";
}

// Callables too large for the largest class, or more aligned than any class guarantees, are
// allocated with operator new; the others are not.
TEST(BlockAlloc, LargeAndOverAlignedCallablesFallBack) {
    muster::thread_pool pool({.max_workers = 2});
    auto const before = md::this_thread_block_stats().oversize;

    std::array<unsigned char, 512> big{};
    big[511] = 7;
    EXPECT_EQ(pool.submit([big] { return int(big[511]); }).result(), 7);
    EXPECT_EQ(md::this_thread_block_stats().oversize, before + 1);

    struct alignas(128) over_aligned {
        int v = 3;
    };
    over_aligned oa;
    EXPECT_EQ(pool.submit([oa] { return oa.v; }).result(), 3);
    EXPECT_EQ(md::this_thread_block_stats().oversize, before + 2);

    struct alignas(64) line_aligned {
        int v = 4;
    };
    line_aligned la;
    EXPECT_EQ(
        pool.submit([la] { return reinterpret_cast<std::uintptr_t>(&la) % 64 == 0 ? la.v : -1; })
            .result(),
        4);
    EXPECT_EQ(md::this_thread_block_stats().oversize, before + 2);  // served by a class

    void* const p = md::allocate_block<64, 64>();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
    md::deallocate_block<64, 64>(p);
    void* const q = md::allocate_block<160, 64>();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(q) % 64, 0u);
    md::deallocate_block<160, 64>(q);
}

#ifdef MUSTER_DETAIL_ASAN
// Under AddressSanitizer a cached block is poisoned past its link word, and a block handed out
// is unpoisoned only for the size asked for.
TEST(BlockAllocDeathTest, CachedBlockIsPoisoned) {
    EXPECT_DEATH(
        {
            auto* const p = static_cast<volatile unsigned char*>(alloc_small());
            free_small(const_cast<unsigned char*>(p));
            (void)p[16];
        },
        "use-after-poison");
}

TEST(BlockAllocDeathTest, SlotTailIsPoisoned) {
    EXPECT_DEATH(
        {
            auto* const p = static_cast<volatile unsigned char*>(md::allocate_block<40, 8>());
            p[48] = 1;
        },
        "use-after-poison");
}
#endif
