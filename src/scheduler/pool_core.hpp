// The thread pool's scheduler: workers, queues, the sleep/wake protocol and the pool's life
// cycle. The protocols are in docs/design/scheduler.md and docs/design/sleep.md; comments name
// their steps (S1.., L1..).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "muster/detail/wait_target.hpp"
#include "muster/thread_pool.hpp"
#include "scheduler/injection_queue.hpp"
#include "scheduler/work_stealing_deque.hpp"

namespace muster::detail {

class pool_core;

/// One worker slot. Allocated the first time a thread is started in it and reused after that
/// thread exits (keep_alive), freed with the pool.
struct alignas(64) worker {
    pool_core* core = nullptr;
    std::size_t slot = 0;
    work_stealing_deque deque;

    /// Park token (S4, S5a): 1 when a waker has chosen this worker (or an armed target is
    /// ready); 0 while the worker is registered and awake; 2 while it sleeps in the kernel. The
    /// worker resets it to 0 under mu_ when it registers as idle, moves it 0 -> 2 by CAS just
    /// before sleeping and sleeps while it is 2. notify_work exchanges in 1 (under mu_, after
    /// removing the worker from the idle list) and enters the kernel to wake it only if it saw
    /// 2; other wakers store 1 and always unpark.
    std::atomic<std::uint32_t> park_word{0};

    // Counters written only by this worker (relaxed store of own value + 1), read by stats().
    std::atomic<std::size_t> completed{0};
    std::atomic<std::size_t> failed{0};
    std::atomic<std::size_t> cancelled{0};
    /// Nesting depth of tasks running on this worker (helping waits run tasks inside tasks);
    /// written by the owner, read relaxed by stats().
    std::atomic<std::uint32_t> running{0};

    // Guarded by the pool's mu_.
    bool in_idle_list = false;
    bool alive = false;
    std::thread thread;

    // Owner only.
    /// Current spin window (S3c): halved after a search that found nothing (to zero once below
    /// 1/16 of the configured spin: no search at all), doubled (up to the configured spin) after
    /// one that found work, and reset to the full window when the worker is woken sooner than
    /// the window after parking. A lightly loaded pool stops burning CPU on searches that never
    /// pay off while a bursty one keeps its low wake-up latency.
    std::chrono::nanoseconds spin_window{0};
    std::uint32_t rng = 0;
    std::uint32_t tick = 0;
};

std::size_t muster_default_workers() noexcept;

class pool_core : public std::enable_shared_from_this<pool_core> {
public:
    explicit pool_core(thread_pool_options options);
    ~pool_core();

    std::uint32_t id() const noexcept { return id_; }
    std::size_t max_workers() const noexcept { return opts_.max_workers; }

    void enqueue(task_base* t);
    void enqueue_bulk(task_base* const* tasks, std::size_t count);
    void wait_idle();
    void shutdown(shutdown_options options);
    void terminate();
    pool_stats stats() const;

    /// The worker of this pool running on the calling thread, or nullptr.
    worker* current_worker() const noexcept;
    /// Runs other tasks on `w` until `target` is ready or `deadline` passes (helping wait).
    bool help_wait(worker& w, wait_target& target, deadline_t deadline);

    static void worker_main(std::shared_ptr<pool_core> keep, worker* w, std::size_t index);

private:
    // Finding and running work.
    task_base* find_task(worker& w);
    task_base* take_injected(worker& w);
    task_base* steal_any(worker& w);
    task_base* search(worker& w);
    void run_task(worker& w, task_base* t);
    void on_dequeued() noexcept;
    void release_capacity() noexcept;
    bool try_reserve() noexcept;
    bool reserve_or_overflow(task_base* t, worker* w);
    bool evict_oldest();
    std::exception_ptr closed_error() const;

    // Sleeping and waking (docs/design/sleep.md).
    enum class park_outcome { woken, task, exit };
    park_outcome park(worker& w, task_base*& found);
    void notify_work(bool even_if_searching = false);
    void register_idle_locked(worker& w);
    bool leave_idle(worker& w);
    void wake_all_locked();
    void notify_quiescence_locked();
    bool quiescent_locked(bool from_worker) const;
    bool work_visible() const noexcept;

    // Growth and life cycle.
    void maybe_spawn();
    void spawn_locked();
    void worker_exit_locked(worker& w);
    void break_pool(std::exception_ptr cause, const char* what_happened);
    void cancel_queued();
    template <class OnTask>
    void drain(OnTask&& on_task);
    void run_inline(task_base* t);
    void join_workers();

    thread_pool_options opts_;
    std::uint32_t id_;
    std::string prefix_;
    std::stop_source stop_;          // requested by terminate()
    std::stop_token stop_token_;     // stop_.get_token(), read by every task run

    injection_queue injected_;
    /// Worker slots, max_workers of them. A slot's worker is created under mu_ and published
    /// with a release store; thieves load it with acquire. Workers are deleted with the pool.
    std::unique_ptr<std::atomic<worker*>[]> slots_;
    /// Number of slots ever used (high-water mark); thieves scan [0, slot_count_). Written
    /// under mu_ with release, read with acquire.
    std::atomic<std::size_t> slot_count_{0};

    /// Workers currently in the spin search (S3): at most one. CAS 0 -> 1 to start searching;
    /// seq_cst so that submitters reading 1 can rely on the searcher's later re-check.
    alignas(64) std::atomic<std::uint32_t> searching_{0};
    /// Number of workers on the idle list; mirrors idle_.size(), written under mu_ (seq_cst),
    /// read lock-free by submitters (S2) to skip the lock when nobody sleeps.
    std::atomic<std::uint32_t> idle_count_{0};
    /// Live worker threads; written under mu_, read relaxed as a hint by maybe_spawn().
    std::atomic<std::size_t> live_{0};

    /// Guards the idle list, slots' alive/in_idle_list/thread, parked_, idle_helpers_, and the
    /// quiescence condition.
    alignas(64) mutable std::mutex mu_;
    std::condition_variable quiescent_cv_;
    std::vector<worker*> idle_;                // LIFO: the most recently idle worker is warmest
    std::vector<worker*> idle_waiting_workers_;  // workers in wait_idle(), parked
    std::size_t parked_ = 0;        // workers parked in park() (S5)
    std::size_t idle_helpers_ = 0;  // workers parked inside wait_idle()
    std::size_t quiescence_waiters_ = 0;
    std::size_t created_ = 0;       // threads ever started (for names)
    bool stopping_ = false;         // closed and drained: every worker leaves (L3)
    std::string broken_reason_;     // non-empty once broken

    /// Outside submissions: 0 open, 1 closed (shutdown), 2 broken. Mirrors the injection queue's
    /// own state (which is authoritative for pushes) so checks need no lock. release/acquire.
    std::atomic<int> ext_state_{0};
    /// Submissions from the pool's own tasks are refused too (cancel_pending, terminate,
    /// broken). release/acquire.
    std::atomic<bool> internal_closed_{false};

    /// Bounded queue (queue_capacity > 0): tasks queued and not yet taken. Reserved with a CAS
    /// before a push, released when a worker takes the task.
    alignas(64) std::atomic<std::size_t> queued_{0};
    std::atomic<std::size_t> blocked_submitters_{0};
    std::mutex space_mu_;
    std::condition_variable space_cv_;

    // Counters for tasks handled outside the workers (caller_runs, pool-initiated cancels).
    std::atomic<std::size_t> extra_completed_{0};
    std::atomic<std::size_t> extra_failed_{0};
    std::atomic<std::size_t> extra_cancelled_{0};
};

}  // namespace muster::detail
