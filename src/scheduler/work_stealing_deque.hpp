// A growable Chase-Lev work-stealing deque of task pointers (Chase & Lev 2005; the C11 memory
// orders of Le, Pop, Cohen & Zappa Nardelli 2013). See docs/design/scheduler.md, "Deques".
//
// The owner pushes and pops at the bottom (LIFO); any other thread steals at the top (FIFO).
// The store-load orderings that the paper expresses with seq_cst fences are expressed here with
// seq_cst operations on top_ and bottom_, which ThreadSanitizer models exactly (it does not
// model standalone fences). On x86 the cost is the same (one locked instruction).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "muster/detail/task.hpp"

namespace muster::detail {

class work_stealing_deque {
public:
    explicit work_stealing_deque(std::int64_t capacity = 256)
        : array_(new ring(capacity)) {
        retired_.emplace_back(array_.load(std::memory_order_relaxed));
    }
    work_stealing_deque(const work_stealing_deque&) = delete;
    work_stealing_deque& operator=(const work_stealing_deque&) = delete;

    /// Owner only. Never fails: the ring doubles when full.
    void push(task_base* t) {
        std::int64_t const b = bottom_.load(std::memory_order_relaxed);
        // acquire: pairs with thieves' CAS on top_, so slots they took may be reused.
        std::int64_t const tp = top_.load(std::memory_order_acquire);
        ring* a = array_.load(std::memory_order_relaxed);
        if (b - tp >= a->capacity) a = grow(a, b, tp);
        a->put(b, t);
        // seq_cst (release would do for the thieves: one that sees the new bottom also sees the
        // slot and the task's contents): the sleep protocol's step S2 needs the publication in
        // the single total order, before the submitter reads the sleepers' state.
        bottom_.store(b + 1, std::memory_order_seq_cst);
    }

    /// Owner only. Returns nullptr when empty.
    task_base* pop() {
        std::int64_t const b = bottom_.load(std::memory_order_relaxed) - 1;
        ring* const a = array_.load(std::memory_order_relaxed);
        // seq_cst store then seq_cst load: the owner's claim of slot b is ordered before it reads
        // top_, and a thief's read of top_ before its read of bottom_, in one total order; so the
        // owner and a thief cannot both take the last element without meeting at the CAS below.
        bottom_.store(b, std::memory_order_seq_cst);
        std::int64_t tp = top_.load(std::memory_order_seq_cst);
        if (tp > b) {  // empty
            bottom_.store(b + 1, std::memory_order_relaxed);
            return nullptr;
        }
        task_base* t = a->get(b);
        if (tp == b) {  // last element: race the thieves for it
            if (!top_.compare_exchange_strong(tp, tp + 1, std::memory_order_seq_cst,
                                              std::memory_order_relaxed))
                t = nullptr;
            bottom_.store(b + 1, std::memory_order_relaxed);
        }
        return t;
    }

    /// Any thread. Returns nullptr when empty or when it lost a race (the caller moves on).
    task_base* steal() {
        std::int64_t tp = top_.load(std::memory_order_seq_cst);
        std::int64_t const b = bottom_.load(std::memory_order_seq_cst);
        if (tp >= b) return nullptr;
        // acquire: pairs with grow()'s release, so the ring's slots are visible.
        ring* const a = array_.load(std::memory_order_acquire);
        task_base* const t = a->get(tp);
        if (!top_.compare_exchange_strong(tp, tp + 1, std::memory_order_seq_cst,
                                          std::memory_order_relaxed))
            return nullptr;
        return t;
    }

    /// Any thread; a racy hint (exact when only the owner is running).
    bool empty() const noexcept {
        return bottom_.load(std::memory_order_relaxed) <= top_.load(std::memory_order_relaxed);
    }
    std::int64_t size_hint() const noexcept {
        std::int64_t const n =
            bottom_.load(std::memory_order_relaxed) - top_.load(std::memory_order_relaxed);
        return n > 0 ? n : 0;
    }

private:
    struct ring {
        std::int64_t capacity;
        std::int64_t mask;
        std::unique_ptr<std::atomic<task_base*>[]> slots;
        explicit ring(std::int64_t cap)
            : capacity(cap), mask(cap - 1), slots(new std::atomic<task_base*>[cap]) {}
        // Slots are atomics so that a thief reading a slot the owner is overwriting is a benign
        // race (the thief's CAS on top_ then fails); relaxed is enough because top_/bottom_ carry
        // the ordering.
        void put(std::int64_t i, task_base* t) {
            slots[i & mask].store(t, std::memory_order_relaxed);
        }
        task_base* get(std::int64_t i) const { return slots[i & mask].load(std::memory_order_relaxed); }
    };

    ring* grow(ring* old, std::int64_t b, std::int64_t tp) {
        auto* bigger = new ring(old->capacity * 2);
        for (std::int64_t i = tp; i < b; ++i) bigger->put(i, old->get(i));
        retired_.emplace_back(bigger);  // old rings stay alive: thieves may still read them
        array_.store(bigger, std::memory_order_release);
        return bigger;
    }

    // top_ and bottom_ on separate cache lines: thieves hammer top_, the owner bottom_.
    alignas(64) std::atomic<std::int64_t> top_{0};
    alignas(64) std::atomic<std::int64_t> bottom_{0};
    alignas(64) std::atomic<ring*> array_;
    std::vector<std::unique_ptr<ring>> retired_;  // owner only (grow), freed with the deque
};

}  // namespace muster::detail
