// The injection queue: tasks submitted from threads outside the pool, FIFO. See
// docs/design/scheduler.md, "Injection".
//
// A mutex-protected intrusive list (the link lives in the task block, so pushing allocates
// nothing). The mutex is a spin_mutex: the critical sections are a few pointer writes, and one
// producer against the workers' batch pops would otherwise sleep and wake in the kernel. Workers
// take a batch at a time into their own deque, so the lock is taken about once per batch on the
// consumer side. size_ mirrors the length for lock-free emptiness checks.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

#include "muster/detail/spin_mutex.hpp"
#include "muster/detail/task.hpp"

namespace muster::detail {

class injection_queue {
public:
    /// Outcome of push(): the queue refuses tasks once closed.
    enum class push_result { ok, closed, broken };

    /// Appends `t` unless the queue is closed. `t->next_` must be unused.
    push_result push(task_base* t) {
        std::lock_guard lock(mu_);
        if (state_ != open) return state_ == broken_state ? push_result::broken : push_result::closed;
        t->next_ = nullptr;
        if (tail_) tail_->next_ = t;
        else head_ = t;
        tail_ = t;
        ++pushed_;
        // seq_cst: the submitter then reads the sleepers' state; a worker that registered as
        // sleeping reads size_ after. One of the two sees the other (docs/design/sleep.md, S2).
        size_.store(size_.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
        return push_result::ok;
    }

    /// Appends the list `first`..`last` (linked through next_, `count` tasks) in one critical
    /// section, unless the queue is closed.
    push_result push_list(task_base* first, task_base* last, std::size_t count) {
        std::lock_guard lock(mu_);
        if (state_ != open) return state_ == broken_state ? push_result::broken : push_result::closed;
        last->next_ = nullptr;
        if (tail_) tail_->next_ = first;
        else head_ = first;
        tail_ = last;
        pushed_ += count;
        size_.store(size_.load(std::memory_order_relaxed) + count, std::memory_order_seq_cst);
        return push_result::ok;
    }

    /// Removes and returns up to `max` tasks as a list linked through next_ (nullptr if empty);
    /// `count` receives how many.
    task_base* pop_batch(std::size_t max, std::size_t& count) {
        count = 0;
        if (size_.load(std::memory_order_seq_cst) == 0) return nullptr;
        std::lock_guard lock(mu_);
        task_base* const first = head_;
        task_base* last = nullptr;
        while (head_ && count < max) {
            last = head_;
            head_ = head_->next_;
            ++count;
        }
        if (last) last->next_ = nullptr;
        if (!head_) tail_ = nullptr;
        size_.store(size_.load(std::memory_order_relaxed) - count, std::memory_order_seq_cst);
        return count ? first : nullptr;
    }

    /// Removes everything (for cancellation at shutdown / breaking).
    task_base* pop_all(std::size_t& count) {
        return pop_batch(static_cast<std::size_t>(-1), count);
    }

    /// Stops accepting pushes (shutdown). Returns false if it was already closed.
    bool close() {
        std::lock_guard lock(mu_);
        if (state_ != open) return false;
        state_ = closed_state;
        return true;
    }
    /// Stops accepting pushes because the pool is broken.
    void mark_broken() {
        std::lock_guard lock(mu_);
        state_ = broken_state;
    }
    bool is_open() const {
        std::lock_guard lock(mu_);
        return state_ == open;
    }

    std::size_t size() const noexcept { return size_.load(std::memory_order_seq_cst); }
    bool empty() const noexcept { return size() == 0; }
    /// Total tasks ever pushed (for statistics).
    std::size_t pushed() const {
        std::lock_guard lock(mu_);
        return pushed_;
    }

private:
    enum state_t { open, closed_state, broken_state };
    mutable spin_mutex mu_;
    task_base* head_ = nullptr;  // guarded by mu_
    task_base* tail_ = nullptr;  // guarded by mu_
    state_t state_ = open;       // guarded by mu_
    std::size_t pushed_ = 0;     // guarded by mu_
    /// Number of queued tasks; written only under mu_, read lock-free as a hint and by the
    /// sleep protocol.
    std::atomic<std::size_t> size_{0};
};

}  // namespace muster::detail
