// The shared part of the task-block allocator: the per-class depots and slabs, the slow paths
// (A3, A5, A6), the thread-exit flush (A7), allocation after that flush (A8) and the fallback
// to operator new (A9). docs/design/allocator.md describes the steps and why they are correct.
#include "muster/detail/block_alloc.hpp"

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

namespace muster::detail {

constinit thread_local block_thread_cache t_block_cache;

namespace {

// Under AddressSanitizer every block is its own operator-new allocation instead of a slot of a
// slab: LeakSanitizer then still reports a leaked task block, and ASan's redzones still catch an
// overflow from one block into the next. The caches, magazines and depot are the same code.
#ifdef MUSTER_DETAIL_ASAN
constexpr bool use_slabs = false;
#else
constexpr bool use_slabs = true;
#endif

/// A slab: slab_bytes of memory aligned to slab_bytes, so the slab of a block is its address
/// with the low bits cleared. The header takes the first slot; the other slots are blocks.
/// glibc serves such an allocation with an mmap that touches about two pages beyond the slab;
/// at 256 KiB that is 3% of it.
constexpr std::size_t slab_bytes = std::size_t{256} * 1024;

struct slab {
    // Every field is guarded by the lock of the slab's class (class_pool::lock), except
    // `capacity` and `size_class`, which are written once by the thread that creates the slab,
    // before any of its blocks is handed out (so before any other thread can reach the slab).
    slab* prev = nullptr;          ///< links in the class's partial list (slabs with free blocks)
    slab* next = nullptr;          ///< also links slabs waiting to be freed (slab_graveyard)
    free_block* free = nullptr;    ///< blocks returned to this slab (A6), LIFO
    char* tail = nullptr;          ///< the uncarved end of the slab that no thread owns (A7)
    std::uint32_t free_count = 0;  ///< length of `free`
    std::uint32_t tail_count = 0;  ///< blocks in [tail, end of the slab)
    std::uint32_t capacity;        ///< blocks in the slab
    std::uint32_t size_class;
    bool in_partial = false;
    // Invariant: capacity - available() blocks are out of the slab: in use, in a thread cache or
    // the depot, or in the bump region of a thread (A2). in_partial == (0 < available() <
    // capacity); a slab whose available() reaches capacity is unlinked and freed at once (A6), so
    // no slab with every block free is ever kept.

    std::uint32_t available() const noexcept { return free_count + tail_count; }

    slab(std::uint32_t cap, std::uint32_t k) noexcept : capacity(cap), size_class(k) {}
};
static_assert(sizeof(slab) <= block_class_sizes[0], "the slab header must fit in one slot");

constexpr std::uint32_t slab_capacity(std::size_t k) noexcept {
    return static_cast<std::uint32_t>(slab_bytes / block_class_sizes[k] - 1);
}

slab* slab_of(const void* p) noexcept {
    return reinterpret_cast<slab*>(reinterpret_cast<std::uintptr_t>(p) & ~(slab_bytes - 1));
}

/// A magazine in the depot: its first block, reused as the depot's node. The blocks are linked
/// through their first word as everywhere else; `below` is the next magazine down the stack.
struct magazine {
    free_block first;
    magazine* below;
    std::uint32_t count;
};
static_assert(sizeof(magazine) <= block_class_sizes[0], "a magazine node must fit in one block");

/// The shared state of one size class.
struct alignas(64) class_pool {
    /// Guards every other member, and every slab header of this class except its constant
    /// fields. Taken once per magazine moved (A3b, A3c, A5, A7) and once per block only after
    /// the calling thread's exit flush (A8); never on the fast paths. std::mutex: its unlock
    /// (release) and lock (acquire) are the only hand-off of blocks between threads, and
    /// ThreadSanitizer models them. Slab memory is allocated before it is taken and freed after
    /// it is released (slab_graveyard), so it never waits for the system allocator (except in
    /// the AddressSanitizer build, which deletes the blocks a full depot refuses under it).
    std::mutex lock;
    /// The depot: a stack of magazines, at most block_depot_magazines of them.
    magazine* depot = nullptr;
    std::size_t depot_magazines = 0;
    std::size_t depot_blocks = 0;
    /// Slabs with some but not all blocks free (A6), most recently freed-into first.
    slab* partial = nullptr;
    /// A hint: whether `depot` or `partial` was non-empty when they last changed. Stored
    /// (relaxed) under `lock` by every change of either (note_reusable_locked); loaded (relaxed)
    /// without the lock by A3, which skips the lock when there is nothing to reuse. It orders
    /// nothing: a stale false opens a fresh window (A3e) although blocks could have been
    /// reused, a stale true costs one lock that finds nothing; the blocks themselves change
    /// hands only under `lock`.
    std::atomic<bool> reusable{false};
};

/// The shared pools are never destroyed: threads still running while static destructors run,
/// and their thread_local destructors (A7), may free task blocks after main has returned.
union shared_pools {
    class_pool pools[block_class_count];
    constexpr shared_pools() : pools{} {}
    ~shared_pools() {}
};
constinit shared_pools shared;

/// Slabs allocated and not freed, all classes. A statistic only: relaxed increments and
/// decrements, read relaxed by block_pool_snapshot; nothing is ordered by it.
constinit std::atomic<std::size_t> live_slabs{0};

void set_next(free_block* b, free_block* next) noexcept { b->next = next; }

// ---- Slabs (lock held unless said otherwise) ---------------------------------------------------

/// Slabs found empty under a class lock; declared before the lock_guard, so they are freed
/// after the lock is released.
class slab_graveyard {
public:
    slab_graveyard() = default;
    slab_graveyard(const slab_graveyard&) = delete;
    slab_graveyard& operator=(const slab_graveyard&) = delete;
    void add(slab* s) noexcept {
        s->next = head_;
        head_ = s;
    }
    ~slab_graveyard() {
        while (head_) {
            slab* const s = head_;
            head_ = s->next;
            s->~slab();
            ::operator delete(static_cast<void*>(s), slab_bytes, std::align_val_t{slab_bytes});
            live_slabs.fetch_sub(1, std::memory_order_relaxed);  // statistic
        }
    }

private:
    slab* head_ = nullptr;
};

/// A fresh slab of class `k` with no free blocks (all of them out: the caller owns them).
/// No lock needed: nobody else knows the slab yet. Throws std::bad_alloc.
slab* make_slab(std::size_t k) {
    void* const mem = ::operator new(slab_bytes, std::align_val_t{slab_bytes});
    live_slabs.fetch_add(1, std::memory_order_relaxed);  // statistic
    return ::new (mem) slab(slab_capacity(k), static_cast<std::uint32_t>(k));
}

char* slab_first_block(slab* s, std::size_t k) noexcept {
    return reinterpret_cast<char*>(s) + block_class_sizes[k];
}

/// Keeps class_pool::reusable in step with the depot and the partial list (lock held).
void note_reusable_locked(class_pool& pool) noexcept {
    pool.reusable.store(pool.depot != nullptr || pool.partial != nullptr,
                        std::memory_order_relaxed);  // a hint, see class_pool::reusable
}

void unlink_partial(class_pool& pool, slab* s) noexcept {
    if (s->prev)
        s->prev->next = s->next;
    else
        pool.partial = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
    s->in_partial = false;
    note_reusable_locked(pool);
}

void link_partial(class_pool& pool, slab* s) noexcept {
    s->prev = nullptr;
    s->next = pool.partial;
    if (pool.partial) pool.partial->prev = s;
    pool.partial = s;
    s->in_partial = true;
    note_reusable_locked(pool);
}

/// After blocks came back to `s`: frees it (through `graveyard`) if all of them are back,
/// otherwise makes sure it is on the partial list.
void after_return_locked(class_pool& pool, slab* s, slab_graveyard& graveyard) noexcept {
    if (s->available() == s->capacity) {
        if (s->in_partial) unlink_partial(pool, s);
        graveyard.add(s);
    } else if (!s->in_partial) {
        link_partial(pool, s);
    }
}

/// After blocks were taken from `s`: takes it off the partial list if it has none left.
void after_take_locked(class_pool& pool, slab* s) noexcept {
    if (s->available() == 0 && s->in_partial) unlink_partial(pool, s);
}

/// A6: gives the free block `b` of class `k` back to the system layer: to its slab (which is
/// freed, through `graveyard`, once every block of it is back), or, without slabs, to
/// operator delete.
void release_block_locked(class_pool& pool, std::size_t k, free_block* b,
                          slab_graveyard& graveyard) noexcept {
    if constexpr (use_slabs) {
        slab* const s = slab_of(b);
        assert(s->size_class == k);
        set_next(b, s->free);
        s->free = b;
        ++s->free_count;
        after_return_locked(pool, s, graveyard);
    } else {
        (void)pool;
        (void)graveyard;
        block_unpoison(b, block_class_sizes[k]);
        ::operator delete(static_cast<void*>(b), block_class_sizes[k],
                           std::align_val_t{block_class_align(k)});
    }
}

void release_list_locked(class_pool& pool, std::size_t k, free_block* list,
                         slab_graveyard& graveyard) noexcept {
    while (list) {
        free_block* const next = block_next(list);
        release_block_locked(pool, k, list, graveyard);
        list = next;
    }
}

/// A3c: takes up to `max` blocks from the free list of `s` (not empty); returns the list and
/// its length in `count`.
free_block* take_free_locked(class_pool& pool, slab* s, std::uint32_t max,
                             std::uint32_t& count) noexcept {
    free_block* const head = s->free;
    free_block* last = head;
    std::uint32_t n = 1;
    for (free_block* nx = block_next(last); n < max && nx != nullptr; nx = block_next(last)) {
        last = nx;
        ++n;
    }
    s->free = block_next(last);
    set_next(last, nullptr);
    s->free_count -= n;
    after_take_locked(pool, s);
    count = n;
    return head;
}

// ---- The depot (lock held) ---------------------------------------------------------------------

void push_depot_locked(class_pool& pool, free_block* list, std::uint32_t count) noexcept {
    // The header stays unpoisoned while the magazine is in the depot, like a link (see
    // block_alloc.hpp): `below` keeps the magazines under it reachable for LeakSanitizer.
    block_unpoison(list, sizeof(magazine));
    free_block* const rest = list->next;
    auto* const m = ::new (static_cast<void*>(list)) magazine{free_block{rest}, pool.depot, count};
    pool.depot = m;
    ++pool.depot_magazines;
    pool.depot_blocks += count;
    note_reusable_locked(pool);
}

free_block* pop_depot_locked(class_pool& pool, std::uint32_t& count) noexcept {
    magazine* const m = pool.depot;
    if (m == nullptr) return nullptr;
    block_unpoison(m, sizeof(magazine));
    pool.depot = m->below;
    count = m->count;
    free_block* const rest = m->first.next;
    free_block* const head = ::new (static_cast<void*>(m)) free_block{rest};
    block_poison(reinterpret_cast<char*>(m) + sizeof(free_block),
                 sizeof(magazine) - sizeof(free_block));
    --pool.depot_magazines;
    pool.depot_blocks -= count;
    note_reusable_locked(pool);
    return head;
}

// ---- Moving magazines (no lock held) -----------------------------------------------------------

/// A5: hands a magazine of `count` blocks to the depot, or, when the depot is full, back to
/// the slabs (A6).
void give_magazine(std::size_t k, free_block* list, std::uint32_t count) noexcept {
    class_pool& pool = shared.pools[k];
    slab_graveyard graveyard;
    std::lock_guard guard(pool.lock);
    if (pool.depot_magazines < block_depot_magazines)
        push_depot_locked(pool, list, count);
    else
        release_list_locked(pool, k, list, graveyard);
}

/// The end of a window of at most one magazine's worth of blocks opened at `from` (A2, A3e).
char* window_end(char* from, char* limit, std::size_t k) noexcept {
    std::size_t const room = static_cast<std::size_t>(limit - from);
    std::size_t const window = std::size_t{block_magazine_size(k)} * block_class_sizes[k];
    return from + (room < window ? room : window);
}

/// Makes [first, first + blocks) the thread's bump region, with its first window open.
void own_region(block_class_cache& c, std::size_t k, char* first, std::uint32_t blocks) noexcept {
    c.bump = first;
    c.bump_limit = first + std::size_t{blocks} * block_class_sizes[k];
    c.bump_end = window_end(first, c.bump_limit, k);
    c.fresh += blocks;
}

/// A3b, A3c: fills the empty active magazine of `c` from the depot or a partial slab's free
/// list, or, if the thread's own bump region is used up, adopts a partial slab's uncarved tail
/// as its new bump region. Returns false if it found neither.
bool refill(std::size_t k, block_class_cache& c) {
    class_pool& pool = shared.pools[k];
    std::uint32_t count = 0;
    std::lock_guard guard(pool.lock);
    free_block* list = pop_depot_locked(pool, count);
    if (list == nullptr && pool.partial != nullptr) {
        slab* const s = pool.partial;
        if (s->free != nullptr) {
            list = take_free_locked(pool, s, block_magazine_size(k), count);
        } else if (c.bump == c.bump_limit) {
            own_region(c, k, s->tail, s->tail_count);
            s->tail = nullptr;
            s->tail_count = 0;
            after_take_locked(pool, s);
            return true;
        }
    }
    if (list == nullptr) return false;
    c.active = list;
    c.count = count;
    ++t_block_cache.magazines_in;
    return true;
}

/// A3d without slabs: one fresh block from operator new.
void* fresh_block(std::size_t k) {
    return ::operator new(block_class_sizes[k], std::align_val_t{block_class_align(k)});
}

/// The block handed out for a fresh allocation of `size` bytes in class `k`: with slabs it is
/// never poisoned; without, the slot's tail beyond `size` is.
void* hand_out_fresh(void* p, std::size_t k, std::size_t size) noexcept {
    block_poison(p, block_class_sizes[k]);
    block_unpoison(p, size);
    return p;
}

/// A7: gives everything the exiting thread holds back to the shared pools.
void flush_thread(block_thread_cache& t) noexcept {
    for (std::size_t k = 0; k < block_class_count; ++k) {
        block_class_cache& c = t.classes[k];
        if (c.spare) {
            give_magazine(k, c.spare, block_magazine_size(k));
            ++t.magazines_out;
        }
        if (c.active) {
            give_magazine(k, c.active, c.count);
            ++t.magazines_out;
        }
        if (c.bump != c.bump_limit) {
            // The uncarved blocks become the slab's tail, untouched (the slab may be partial
            // already, with blocks carved earlier now back in its free list).
            class_pool& pool = shared.pools[k];
            slab* const s = slab_of(c.bump);
            slab_graveyard graveyard;
            std::lock_guard guard(pool.lock);
            assert(s->tail_count == 0);
            s->tail = c.bump;
            s->tail_count = static_cast<std::uint32_t>((c.bump_limit - c.bump) /
                                                       std::ptrdiff_t(block_class_sizes[k]));
            after_return_locked(pool, s, graveyard);
        }
        c.active = c.spare = nullptr;
        c.count = c.limit = 0;
        c.bump = c.bump_end = c.bump_limit = nullptr;
    }
    t.state = 2;
}

struct exit_flush {
    exit_flush() noexcept = default;
    exit_flush(const exit_flush&) = delete;
    exit_flush& operator=(const exit_flush&) = delete;
    ~exit_flush() { flush_thread(t_block_cache); }
};

/// Arms the exit flush (A7) and opens the fast paths for the calling thread.
void register_thread(block_thread_cache& t) noexcept {
    // Constructed here, the first time this thread reaches a slow path; its destructor runs at
    // thread exit, before or after other thread_locals' destructors (which may still free
    // blocks: the state then sends them through A8).
    [[maybe_unused]] static thread_local exit_flush flush;
    for (std::size_t k = 0; k < block_class_count; ++k) t.classes[k].limit = block_magazine_size(k);
    t.state = 1;
}

/// A8: allocation on a thread whose cache has been flushed (its thread_local destructors are
/// running): one block at a time, under the lock.
void* allocate_after_exit(std::size_t k, std::size_t size) {
    class_pool& pool = shared.pools[k];
    {
        std::lock_guard guard(pool.lock);
        std::uint32_t count = 0;
        if (free_block* const b = pop_depot_locked(pool, count)) {
            if (free_block* const rest = block_next(b)) push_depot_locked(pool, rest, count - 1);
            return block_hand_out(b, size);
        }
        if (slab* const s = pool.partial) {
            if (s->free != nullptr)
                return block_hand_out(take_free_locked(pool, s, 1, count), size);
            char* const p = s->tail;
            s->tail += block_class_sizes[k];
            --s->tail_count;
            after_take_locked(pool, s);
            return p;
        }
    }
    if constexpr (use_slabs) {
        // A fresh slab: this block out, the others its tail.
        slab* const s = make_slab(k);
        char* const first = slab_first_block(s, k);
        std::lock_guard guard(pool.lock);
        s->tail = first + block_class_sizes[k];
        s->tail_count = s->capacity - 1;
        link_partial(pool, s);
        return first;
    } else {
        return hand_out_fresh(fresh_block(k), k, size);
    }
}

/// A8: a free on a thread whose cache has been flushed.
void release_after_exit(void* p, std::size_t k) noexcept {
    class_pool& pool = shared.pools[k];
    slab_graveyard graveyard;
    std::lock_guard guard(pool.lock);
    release_block_locked(pool, k, block_make_free(p, k, nullptr), graveyard);
}

}  // namespace

// ---- Slow paths --------------------------------------------------------------------------------

void* block_allocate_slow(std::size_t k, std::size_t size) {
    block_thread_cache& t = t_block_cache;
    if (t.state != 1) {
        if (t.state == 2) return allocate_after_exit(k, size);
        register_thread(t);
    }
    block_class_cache& c = t.classes[k];
    if (c.spare) {  // A3a: the spare magazine becomes the active one
        c.active = c.spare;
        c.spare = nullptr;
        c.count = block_magazine_size(k);
    } else if (shared.pools[k].reusable.load(std::memory_order_relaxed) &&  // a hint
               refill(k, c)) {
        // A3b, A3c: blocks freed elsewhere come before the rest of our own region, whose pages
        // may never have been touched (a first touch is a page fault on the allocating thread).
    } else if (c.bump != c.bump_limit) {  // A3e: the next window of our own region
        c.bump_end = window_end(c.bump, c.bump_limit, k);
    } else {
        // A3d: fresh memory.
        if constexpr (use_slabs) {
            slab* const s = make_slab(k);
            own_region(c, k, slab_first_block(s, k), s->capacity);
        } else {
            void* const p = fresh_block(k);
            ++c.fresh;
            return hand_out_fresh(p, k, size);
        }
    }
    if (free_block* const b = c.active) {  // A1 on the refilled magazine
        c.active = block_next(b);
        --c.count;
        return block_hand_out(b, size);
    }
    char* const p = c.bump;  // A2 on the new window
    c.bump = p + block_class_sizes[k];
    return p;
}

void block_deallocate_slow(void* p, std::size_t k) noexcept {
    block_thread_cache& t = t_block_cache;
    if (t.state != 1) {
        if (t.state == 2) {
            release_after_exit(p, k);
            return;
        }
        register_thread(t);
    }
    block_class_cache& c = t.classes[k];
    if (c.count >= c.limit) {  // A5: the active magazine is full
        if (c.spare) {
            give_magazine(k, c.spare, block_magazine_size(k));
            ++t.magazines_out;
        }
        c.spare = c.active;
        c.active = nullptr;
        c.count = 0;
    }
    c.active = block_make_free(p, k, c.active);  // A4
    ++c.count;
}

void* block_allocate_oversize(std::size_t size, std::size_t align) {
    void* const p = align > __STDCPP_DEFAULT_NEW_ALIGNMENT__
                        ? ::operator new(size, std::align_val_t{align})
                        : ::operator new(size);
    ++t_block_cache.oversize;  // thread-local storage stays valid after A7: a plain counter
    return p;
}

void block_deallocate_oversize(void* p, std::size_t size, std::size_t align) noexcept {
    if (align > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
        ::operator delete(p, size, std::align_val_t{align});
    else
        ::operator delete(p, size);
}

// ---- Statistics --------------------------------------------------------------------------------

block_cache_stats this_thread_block_stats() noexcept {
    block_thread_cache const& t = t_block_cache;
    block_cache_stats s{};
    for (std::size_t k = 0; k < block_class_count; ++k) {
        block_class_cache const& c = t.classes[k];
        s.cached[k] = c.count + (c.spare ? block_magazine_size(k) : 0);
        s.fresh[k] =
            c.fresh - static_cast<std::uint64_t>(c.bump_limit - c.bump) / block_class_sizes[k];
    }
    s.magazines_in = t.magazines_in;
    s.magazines_out = t.magazines_out;
    s.oversize = t.oversize;
    s.registered = t.state == 1;
    return s;
}

block_pool_stats block_pool_snapshot() {
    block_pool_stats s{};
    for (std::size_t k = 0; k < block_class_count; ++k) {
        class_pool& pool = shared.pools[k];
        std::lock_guard guard(pool.lock);
        s.depot_blocks[k] = pool.depot_blocks;
        for (slab const* p = pool.partial; p != nullptr; p = p->next)
            s.slab_free_blocks += p->available();
    }
    s.slabs = live_slabs.load(std::memory_order_relaxed);  // statistic
    s.slab_bytes = slab_bytes;
    s.slabs_enabled = use_slabs;
    return s;
}

}  // namespace muster::detail
