// muster/detail/block_alloc.hpp: the recycling allocator for task blocks.
//
// Task blocks are allocated on the submitting thread and usually freed on another one (a worker
// after running a posted task, or the consumer dropping the last future). Each thread keeps a
// small cache per size class: two magazines of free blocks, the `active` one it pops from and
// pushes to, and a full `spare`. Whole magazines travel between threads through a per-class
// depot under a lock, so the lock is taken once per magazine, not once per block. Fresh blocks
// are carved from 256 KiB slabs; blocks beyond the bounded caches go back to their slab, and a
// slab whose blocks have all come back is freed. Blocks larger than the largest class, or more
// aligned than their class guarantees, come from operator new.
//
// The protocol, its bounds and the sanitizer rules are in docs/design/allocator.md; the step
// names in the comments (A1..A9) refer to that note. Only the fast paths (A1, A2, A4) are inline;
// everything that touches shared state is in src/block_alloc.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define MUSTER_DETAIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MUSTER_DETAIL_ASAN 1
#endif
#endif
#ifdef MUSTER_DETAIL_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace muster::detail {

// ---- Size classes ------------------------------------------------------------------------------

/// The block sizes served from the caches. A block takes the smallest class that is at least its
/// size and whose alignment guarantee covers its alignment.
inline constexpr std::size_t block_class_sizes[] = {64, 96, 128, 192, 256};
inline constexpr std::size_t block_class_count =
    sizeof(block_class_sizes) / sizeof(block_class_sizes[0]);
/// Returned by block_class_of for blocks served by operator new (A9).
inline constexpr std::size_t block_oversize = block_class_count;

/// Alignment of every block of class `k`: blocks sit at multiples of their size from a slab
/// boundary, so the largest power of two dividing the size, capped at 64 (the cap the
/// sanitizer build's per-block allocations also meet).
constexpr std::size_t block_class_align(std::size_t k) noexcept {
    std::size_t const s = block_class_sizes[k];
    std::size_t const a = s & (~s + 1);
    return a < 64 ? a : 64;
}

/// The class of a block of `size` bytes aligned to `align`, or block_oversize.
constexpr std::size_t block_class_of(std::size_t size, std::size_t align) noexcept {
    for (std::size_t k = 0; k < block_class_count; ++k)
        if (size <= block_class_sizes[k] && align <= block_class_align(k)) return k;
    return block_oversize;
}

/// Blocks per magazine in class `k`: a magazine holds 4 KiB of blocks, so a thread caches at
/// most two magazines (8 KiB) per class.
constexpr std::uint32_t block_magazine_size(std::size_t k) noexcept {
    return static_cast<std::uint32_t>(4096 / block_class_sizes[k]);
}
/// Magazines the depot of one class holds at most; further ones go back to their slabs (A6).
inline constexpr std::size_t block_depot_magazines = 16;

// ---- The per-thread cache ----------------------------------------------------------------------

/// A block in a cache or a slab's free list: its first word links the next one.
struct free_block {
    free_block* next;
};

/// One size class of a thread's cache. Owner thread only: no other thread ever reads or writes
/// it, so nothing here is atomic.
struct block_class_cache {
    /// The active magazine: a LIFO list of `count` blocks (A1 pops, A4 pushes).
    free_block* active = nullptr;
    /// A full magazine (block_magazine_size blocks) or null (A3 swaps it in, A5 fills it).
    free_block* spare = nullptr;
    std::uint32_t count = 0;
    /// block_magazine_size while the thread is registered, 0 before and after (thread exit):
    /// the free fast path (count < limit) then always takes the slow path, which registers the
    /// thread, or hands the block straight to the shared pool once the thread has exited (A8).
    std::uint32_t limit = 0;
    /// [bump, bump_limit): uncarved blocks at the end of a slab this thread owns, its bump
    /// region (A3c, A3d). A2 carves only up to bump_end, the end of the current window: at most
    /// one magazine's worth of blocks (4 KiB, a page) past where the window was opened. When the
    /// window is used up, A3 first looks for freed blocks to reuse and opens the next window
    /// (A3e) only if there are none, so a thread that allocates slowly while others free reuses
    /// warm memory instead of touching a fresh page every magazine's worth of tasks.
    /// bump <= bump_end <= bump_limit; the region is empty when bump == bump_limit.
    char* bump = nullptr;
    char* bump_end = nullptr;
    char* bump_limit = nullptr;
    /// Never-used blocks this thread received: a bump region's worth each time it takes one
    /// (A3c, A3d), one at a time in the AddressSanitizer build. For statistics.
    std::uint64_t fresh = 0;
};

/// A thread's cache: one block_class_cache per class plus statistics. Constant-initialised, so
/// the inline fast paths reach it without a guard; a separate thread_local in block_alloc.cpp
/// flushes it when the thread exits (A7).
struct block_thread_cache {
    block_class_cache classes[block_class_count];
    /// 0: never used; 1: registered (the exit flush is armed); 2: exited (A8 from now on).
    std::uint8_t state = 0;
    std::uint64_t magazines_in = 0;   ///< magazines taken from the depot or a slab (A3)
    std::uint64_t magazines_out = 0;  ///< magazines handed to the depot or the slabs (A5)
    std::uint64_t oversize = 0;       ///< blocks allocated with operator new (A9)
};

extern constinit thread_local block_thread_cache t_block_cache;

// Slow paths (src/block_alloc.cpp).
void* block_allocate_slow(std::size_t k, std::size_t size);
void block_deallocate_slow(void* p, std::size_t k) noexcept;
void* block_allocate_oversize(std::size_t size, std::size_t align);
void block_deallocate_oversize(void* p, std::size_t size, std::size_t align) noexcept;

// ---- AddressSanitizer: cached blocks are poisoned ---------------------------------------------
//
// A block in a cache, the depot or a slab's free list is poisoned, except for the allocator's own
// words at its start (the link; in a depot magazine's first block, the magazine header), so a
// use after free is still reported while the block waits for reuse. Those words stay readable
// because LeakSanitizer ignores pointers stored in poisoned memory: the blocks of a list would
// otherwise look leaked. A block handed out is unpoisoned for the requested size only: the rest
// of its class slot stays poisoned, so an overflow into it is reported too.

inline void block_poison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#ifdef MUSTER_DETAIL_ASAN
    ASAN_POISON_MEMORY_REGION(p, n);
#endif
}
inline void block_unpoison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#ifdef MUSTER_DETAIL_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
}
/// The link of a free block.
inline free_block* block_next(free_block* b) noexcept { return b->next; }
/// Makes `p` (class `k`, no longer in use) a free block linking `next`, poisoned past the link.
inline free_block* block_make_free(void* p, std::size_t k, free_block* next) noexcept {
    auto* const b = ::new (p) free_block{next};
    block_poison(static_cast<char*>(p) + sizeof(free_block),
                 block_class_sizes[k] - sizeof(free_block));
    return b;
}
/// Hands out a free block of class `k` for an object of `size` bytes.
inline void* block_hand_out(free_block* b, [[maybe_unused]] std::size_t size) noexcept {
    block_unpoison(b, size);
    return b;
}

// ---- The fast paths ----------------------------------------------------------------------------

/// Allocates storage for an object of `Size` bytes aligned to `Align`. Throws std::bad_alloc.
/// Any thread; the storage may be freed on any thread with deallocate_block<Size, Align>.
template <std::size_t Size, std::size_t Align>
void* allocate_block() {
    constexpr std::size_t k = block_class_of(Size, Align);
    if constexpr (k == block_oversize) {
        return block_allocate_oversize(Size, Align);
    } else {
        block_class_cache& c = t_block_cache.classes[k];
        if (free_block* const b = c.active) {  // A1: pop the active magazine
            c.active = block_next(b);
            --c.count;
            return block_hand_out(b, Size);
        }
        if (c.bump != c.bump_end) {  // A2: carve from the window of this thread's bump region
            char* const p = c.bump;
            c.bump = p + block_class_sizes[k];
            return p;
        }
        return block_allocate_slow(k, Size);  // A3
    }
}

/// Frees storage from allocate_block<Size, Align>() (the object in it already destroyed).
template <std::size_t Size, std::size_t Align>
void deallocate_block(void* p) noexcept {
    constexpr std::size_t k = block_class_of(Size, Align);
    if constexpr (k == block_oversize) {
        block_deallocate_oversize(p, Size, Align);
    } else {
        block_class_cache& c = t_block_cache.classes[k];
        if (c.count < c.limit) {  // A4: push onto the active magazine
            c.active = block_make_free(p, k, c.active);
            ++c.count;
            return;
        }
        block_deallocate_slow(p, k);  // A5 (or registration, or A8)
    }
}

// ---- Statistics --------------------------------------------------------------------------------

/// The calling thread's cache.
struct block_cache_stats {
    std::size_t cached[block_class_count];   ///< free blocks held, per class (active + spare)
    std::uint64_t fresh[block_class_count];  ///< fresh blocks this thread carved, per class
    std::uint64_t magazines_in;              ///< magazines taken from the depot or the slabs
    std::uint64_t magazines_out;             ///< magazines given to the depot or the slabs
    std::uint64_t oversize;                  ///< allocations that went to operator new
    bool registered;                         ///< the thread-exit flush is armed
};

/// The shared pool, all classes.
struct block_pool_stats {
    std::size_t depot_blocks[block_class_count];  ///< free blocks in each class's depot
    std::size_t slab_free_blocks;  ///< free blocks back in their slabs (partially used slabs)
    std::size_t slabs;             ///< slabs allocated and not yet freed
    std::size_t slab_bytes;        ///< the size of one slab
    bool slabs_enabled;            ///< false in the AddressSanitizer build (per-block allocations)
};

/// A snapshot of the calling thread's cache. Owner thread only (it reads thread-local state).
block_cache_stats this_thread_block_stats() noexcept;
/// A snapshot of the shared pool (takes each class's lock in turn). Thread-safe.
block_pool_stats block_pool_snapshot();

/// The most free blocks of class `k` one thread caches: its two magazines.
constexpr std::size_t block_cache_bound(std::size_t k) noexcept {
    return 2 * std::size_t{block_magazine_size(k)};
}

}  // namespace muster::detail
