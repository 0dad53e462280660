// muster/detail/task.hpp: the task block, one allocation per submitted task.
//
// A task block holds, in one allocation: the header below (state word, reference count, the
// operations table, the intrusive queue link and the completion-hook list), the callable with its
// bound arguments, and the outcome slot (value or std::exception_ptr). muster::future<T> is a
// counted handle to it. The protocol is described in docs/design/futures.md; the step names in
// the comments (F1..F6) refer to that note.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "muster/detail/block_alloc.hpp"
#include "muster/detail/parking.hpp"

#if defined(__SANITIZE_THREAD__)
#define MUSTER_DETAIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MUSTER_DETAIL_TSAN 1
#endif
#endif
#ifdef MUSTER_DETAIL_TSAN
// ThreadSanitizer's runtime (GCC's libtsan and LLVM's): memory accesses of the calling thread are
// not recorded between these calls. Synchronisation still is.
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace muster::detail {

/// Destroys a task's stored exception. The exception object behind it may live on: a thread that
/// rethrew it (future::result) keeps it alive while in its catch handler, through libstdc++'s
/// own atomic reference count (exception_ptr::_M_release, __cxa_end_catch), and that handler may
/// run after its future was dropped (`try { pool.submit(f).result(); } catch (const E& e) {...}`
/// drops the future during unwinding), so the executor's thread, holding the task's last
/// reference, can be the one that frees the exception. That is correct, but the reference count
/// lives in the uninstrumented C++ runtime, so ThreadSanitizer cannot see the ordering and would
/// report the free as racing with the handler's reads. Under ThreadSanitizer this thread's
/// accesses while releasing the exception are therefore not recorded; everything else (the
/// task's own reference count included) is checked as usual.
inline void destroy_error(std::exception_ptr& error) noexcept {
#ifdef MUSTER_DETAIL_TSAN
    __tsan_ignore_thread_begin();
    std::destroy_at(&error);
    __tsan_ignore_thread_end();
#else
    std::destroy_at(&error);
#endif
}

// ---- The state word -----------------------------------------------------------------------
//
// bits 0-2: the phase. pending -> running -> value | error, or pending -> cancelled. The phase
//           leaves `pending` exactly once (a CAS decides who wins: a worker starting the task, or
//           a canceller); a done phase (>= st_value) is terminal.
// bit 3:    st_waiters: some thread is parked (or about to park) on the word and must be woken
//           when the phase becomes done. Set by waiters with a CAS while not done (F3).
// bit 4:    st_hooks: the completion-hook list is non-empty. Set by add_hook, under the hook lock,
//           with a CAS while not done (F4). The completer reads it from the value it replaced.
//
// Completion (F2) is one exchange that installs the done phase and clears both flag bits; the old
// value tells the completer whether to wake parked threads and whether to run hooks, so a task
// nobody waits on costs one atomic exchange and no system call.
inline constexpr std::uint32_t st_pending = 0;
inline constexpr std::uint32_t st_running = 1;
inline constexpr std::uint32_t st_value = 2;
inline constexpr std::uint32_t st_error = 3;
inline constexpr std::uint32_t st_cancelled = 4;
inline constexpr std::uint32_t st_phase_mask = 7;
inline constexpr std::uint32_t st_waiters = 8;
inline constexpr std::uint32_t st_hooks = 16;

constexpr bool phase_done(std::uint32_t s) noexcept { return (s & st_phase_mask) >= st_value; }

struct task_base;

/// A node in a task's completion-hook list. on_complete is called exactly once, after the task's
/// phase became done and after parked waiters were woken, on the completing thread (or on the
/// thread that registered it, if the task was already done). on_complete may destroy the node.
struct completion_hook {
    completion_hook* next = nullptr;
    virtual void on_complete(task_base& task) noexcept = 0;

protected:
    ~completion_hook() = default;
};

/// The per-callable operations of a task block (a hand-made vtable: no RTTI, one pointer).
struct task_ops {
    /// Runs the callable (the phase is already `running`), stores the outcome, destroys the
    /// callable and completes the task. `pool_stop` is the executor's stop token.
    void (*run)(task_base*, const std::stop_token& pool_stop) noexcept;
    /// Destroys the callable without running it (the task was cancelled while pending).
    void (*discard)(task_base*) noexcept;
    /// Stores `error` as the outcome of a task that will never run (phase is `running`), destroys
    /// the callable and completes the task. Used when a pool breaks.
    void (*fail)(task_base*, std::exception_ptr error) noexcept;
    /// Requests stop on the task's own stop source; nullptr if the callable takes no stop_token.
    void (*request_stop)(task_base*) noexcept;
    /// Destroys the outcome and frees the block (the last reference went away).
    void (*destroy)(task_base*) noexcept;
    /// For tasks that run elsewhere (a process pool's): cancels a running task (F7) and asks
    /// the executor to stop it; returns whether the task is now cancelled. nullptr for tasks
    /// run by this process's threads, which cannot be cancelled once started.
    bool (*cancel_running)(task_base*) noexcept;
};

/// Reports an exception nobody else will see (a throwing done-callback, a fire-and-forget task)
/// to the unhandled-exception handler of the executor with id `owner_id`, or to stderr when that
/// executor no longer exists. Never throws.
void report_unhandled(std::uint32_t owner_id, std::exception_ptr error,
                      const char* what_happened) noexcept;

/// Blocks until `task` is done or `deadline` passes; returns whether it is done. On a worker
/// thread of a muster pool this runs other tasks while it waits (helping), so waits inside the
/// pool do not deadlock.
bool wait_task(task_base& task, deadline_t deadline);

struct task_base {
    const task_ops* ops_;
    /// The state word; see the bit layout above. Written with acq_rel RMWs by the parties in
    /// docs/design/futures.md; read with acquire loads by queries so that a done phase also
    /// publishes the outcome written before it.
    std::atomic<std::uint32_t> state_{st_pending};
    /// Number of handles (futures, queue entries, waiters) that keep the block alive. Increments
    /// are relaxed (the incrementer already holds a reference, so the block cannot go away);
    /// the decrement is acq_rel so the last owner sees every write before destroying.
    std::atomic<std::uint32_t> refs_;
    /// Intrusive link for the executor's queues; owned by whichever queue holds the task.
    task_base* next_ = nullptr;
    /// Completion hooks in registration order; guarded by hook_lock_.
    completion_hook* hooks_ = nullptr;
    /// Spin lock for hooks_ (0 free, 1 held). Held only for list splicing, never while a hook
    /// runs. acquire on lock, release on unlock.
    std::atomic<std::uint32_t> hook_lock_{0};
    /// Id of the executor that owns the task, for report_unhandled.
    std::uint32_t owner_id_;

    task_base(const task_ops* ops, std::uint32_t refs, std::uint32_t owner) noexcept
        : ops_(ops), refs_(refs), owner_id_(owner) {}
    task_base(const task_base&) = delete;
    task_base& operator=(const task_base&) = delete;

    std::uint32_t phase() const noexcept {
        return state_.load(std::memory_order_acquire) & st_phase_mask;
    }
    bool done() const noexcept { return phase_done(state_.load(std::memory_order_acquire)); }

    void add_ref() const noexcept {
        // relaxed: the caller holds a reference, so the count cannot reach zero concurrently.
        const_cast<std::atomic<std::uint32_t>&>(refs_).fetch_add(1, std::memory_order_relaxed);
    }
    void release() const noexcept {
        auto* self = const_cast<task_base*>(this);
        if (self->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) self->ops_->destroy(self);
    }

    /// F1: pending -> `to` (running or cancelled). Returns the replaced word (with its flag
    /// bits) on success, or nothing if the task already left pending. acq_rel: the winner
    /// acquires the submitter's writes of the callable; losers learn nothing.
    bool leave_pending(std::uint32_t to, std::uint32_t& old_bits) noexcept {
        std::uint32_t s = state_.load(std::memory_order_relaxed);
        while ((s & st_phase_mask) == st_pending) {
            std::uint32_t const next = to == st_running ? (s & ~st_phase_mask) | st_running
                                                        : st_cancelled;  // done: clear flags
            if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                             std::memory_order_relaxed)) {
                old_bits = s;
                return true;
            }
        }
        return false;
    }

    bool try_start() noexcept {
        std::uint32_t bits;
        return leave_pending(st_running, bits);
    }

    /// pending -> cancelled; on success the callable is destroyed and waiters and hooks are
    /// notified at once (Python weakness W1 fixed: no second "notified" phase).
    bool try_cancel() noexcept {
        std::uint32_t bits;
        if (!leave_pending(st_cancelled, bits)) return false;
        ops_->discard(this);
        notify_done(bits);
        return true;
    }

    /// F2: running -> done phase. The outcome was written before this call; release publishes it.
    void complete(std::uint32_t done_phase) noexcept {
        std::uint32_t const old = state_.exchange(done_phase, std::memory_order_acq_rel);
        notify_done(old);
    }

    /// F7 (tasks that run elsewhere): pending or running -> done phase, unless a canceller
    /// already moved the task to `cancelled` (try_cancel_running). Returns false then, and the
    /// caller destroys the outcome it wrote, which nobody will read.
    bool try_complete(std::uint32_t done_phase) noexcept {
        return finish_if([](std::uint32_t s) { return !phase_done(s); }, done_phase);
    }

    /// F7 (tasks that run elsewhere): running -> cancelled. The executor's completer and a
    /// canceller race with CASes on the word; exactly one moves it to a done phase.
    bool try_cancel_running() noexcept {
        return finish_if([](std::uint32_t s) { return (s & st_phase_mask) == st_running; },
                         st_cancelled);
    }

    /// F7's CAS: while `from(word)` holds, replaces the word with the done phase `to` (flags
    /// cleared) and performs F5/F6 for the flags it replaced. acq_rel on success, as F2 (a
    /// value or error written before is published; waiters woken see a done word); relaxed on
    /// failure: the loser reads nothing the winner wrote.
    template <class From>
    bool finish_if(From from, std::uint32_t to) noexcept {
        std::uint32_t s = state_.load(std::memory_order_relaxed);
        while (from(s)) {
            if (state_.compare_exchange_weak(s, to, std::memory_order_acq_rel,
                                             std::memory_order_relaxed)) {
                notify_done(s);
                return true;
            }
        }
        return false;
    }

    /// Wakes parked waiters (F5) and then runs the hooks in order (F6), per the flag bits that
    /// were set in the word the done phase replaced.
    void notify_done(std::uint32_t old) noexcept {
        if (old & st_waiters) unpark_all(state_);
        if (old & st_hooks) run_hooks();
    }

    void lock_hooks() noexcept {
        while (hook_lock_.exchange(1, std::memory_order_acquire) != 0) {
            while (hook_lock_.load(std::memory_order_relaxed) != 0) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            }
        }
    }
    void unlock_hooks() noexcept { hook_lock_.store(0, std::memory_order_release); }

    /// F4: appends `h` (or, with `front`, puts it before every hook added so far: internal
    /// wake-ups must not wait behind slow user callbacks) unless the task is already done.
    /// Returns false if done (the caller then runs its hook itself, on its own thread).
    bool add_hook(completion_hook* h, bool front = false) noexcept {
        lock_hooks();
        std::uint32_t s = state_.load(std::memory_order_acquire);
        while (!phase_done(s)) {
            // acq_rel: pairs with the completer's exchange, which either sees st_hooks (and then
            // takes the hook lock, so it sees the appended node) or happened first (CAS fails).
            if (state_.compare_exchange_weak(s, s | st_hooks, std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
                if (front) {
                    h->next = hooks_;
                    hooks_ = h;
                } else {
                    h->next = nullptr;
                    completion_hook** tail = &hooks_;
                    while (*tail) tail = &(*tail)->next;
                    *tail = h;
                }
                unlock_hooks();
                return true;
            }
        }
        unlock_hooks();
        return false;
    }

    /// Unlinks `h` if it has not been taken by the completer yet. Returns false if the completer
    /// already took the list (the hook has run or is about to run).
    bool remove_hook(completion_hook* h) noexcept {
        lock_hooks();
        for (completion_hook** p = &hooks_; *p; p = &(*p)->next) {
            if (*p == h) {
                *p = h->next;
                unlock_hooks();
                return true;
            }
        }
        unlock_hooks();
        return false;
    }

    /// F6: takes the whole list under the lock (later add_hook calls see a done phase and run
    /// inline), then runs each hook outside the lock, in list order: internal wake-ups first,
    /// then user callbacks in registration order.
    void run_hooks() noexcept {
        lock_hooks();
        completion_hook* h = hooks_;
        hooks_ = nullptr;
        unlock_hooks();
        while (h) {
            completion_hook* const next = h->next;  // read before: on_complete may free h
            h->on_complete(*this);
            h = next;
        }
    }

protected:
    ~task_base() = default;
};

/// The outcome slot: the value (if any) or the exception, selected by the phase.
template <class T>
struct task_result : task_base {
    union {
        T value_;
        std::exception_ptr error_;
    };
    task_result(const task_ops* ops, std::uint32_t refs, std::uint32_t owner) noexcept
        : task_base(ops, refs, owner) {}
    ~task_result() {}

    void destroy_outcome() noexcept {
        auto const p = phase();
        if (p == st_value) std::destroy_at(std::addressof(value_));
        else if (p == st_error) destroy_error(error_);
    }
};

template <>
struct task_result<void> : task_base {
    union {
        std::exception_ptr error_;
    };
    task_result(const task_ops* ops, std::uint32_t refs, std::uint32_t owner) noexcept
        : task_base(ops, refs, owner) {}
    ~task_result() {}

    void destroy_outcome() noexcept {
        if (phase() == st_error) destroy_error(error_);
    }
};

struct no_stop_source {};

/// The concrete block for a callable `Fn` (already holding its bound arguments) returning `T`.
/// If `Stoppable`, Fn is called with a std::stop_token that fires on future::request_stop() or
/// on the executor's terminate().
template <class T, class Fn, bool Stoppable>
struct task_block final : task_result<T> {
    union {
        Fn fn_;
    };
    [[no_unique_address]] std::conditional_t<Stoppable, std::stop_source, no_stop_source> stop_;

    template <class F>
    task_block(std::uint32_t refs, std::uint32_t owner, F&& f)
        : task_result<T>(&ops, refs, owner) {
        ::new (static_cast<void*>(std::addressof(fn_))) Fn(std::forward<F>(f));
    }
    ~task_block() {}

    // Blocks come from the recycling allocator (docs/design/allocator.md): allocated on the
    // submitting thread, freed by whichever thread drops the last reference.
    static void* operator new(std::size_t) {
        return allocate_block<sizeof(task_block), alignof(task_block)>();
    }
    static void operator delete(void* p, std::size_t) noexcept {
        deallocate_block<sizeof(task_block), alignof(task_block)>(p);
    }

    decltype(auto) invoke([[maybe_unused]] const std::stop_token& pool_stop) {
        if constexpr (Stoppable) {
            // Terminating the pool requests stop on every running stoppable task.
            std::stop_callback forward(pool_stop, [this]() noexcept { stop_.request_stop(); });
            return std::invoke(std::move(fn_), stop_.get_token());
        } else {
            return std::invoke(std::move(fn_));
        }
    }

    static void run(task_base* b, const std::stop_token& pool_stop) noexcept {
        auto* self = static_cast<task_block*>(b);
        std::uint32_t phase = st_value;
        try {
            if constexpr (std::is_void_v<T>) {
                self->invoke(pool_stop);
            } else {
                ::new (static_cast<void*>(std::addressof(self->value_))) T(self->invoke(pool_stop));
            }
        } catch (...) {
            ::new (static_cast<void*>(&self->error_)) std::exception_ptr(std::current_exception());
            phase = st_error;
        }
        std::destroy_at(std::addressof(self->fn_));  // drop captures before anyone sees done
        self->complete(phase);
    }
    static void discard(task_base* b) noexcept {
        std::destroy_at(std::addressof(static_cast<task_block*>(b)->fn_));
    }
    static void fail(task_base* b, std::exception_ptr error) noexcept {
        auto* self = static_cast<task_block*>(b);
        ::new (static_cast<void*>(&self->error_)) std::exception_ptr(std::move(error));
        std::destroy_at(std::addressof(self->fn_));
        self->complete(st_error);
    }
    static void stop(task_base* b) noexcept {
        if constexpr (Stoppable) static_cast<task_block*>(b)->stop_.request_stop();
    }
    static void destroy(task_base* b) noexcept {
        auto* self = static_cast<task_block*>(b);
        self->destroy_outcome();
        delete self;
    }

    static constexpr task_ops ops{
        &run, &discard, &fail, Stoppable ? &stop : nullptr, &destroy, nullptr};
};

/// Wraps `f(args...)` into one nullary (or stop_token-taking) callable that owns decayed copies
/// of the arguments, as std::thread and std::async do.
template <class F, class... Args>
auto bind_task(F&& f, Args&&... args) {
    if constexpr (std::is_invocable_v<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>) {
        return [fn = std::forward<F>(f),
                ... a = std::forward<Args>(args)](std::stop_token st) mutable -> decltype(auto) {
            return std::invoke(std::move(fn), std::move(st), std::move(a)...);
        };
    } else {
        return [fn = std::forward<F>(f), ... a = std::forward<Args>(args)]() mutable -> decltype(auto) {
            return std::invoke(std::move(fn), std::move(a)...);
        };
    }
}

template <class F, class... Args>
inline constexpr bool takes_stop_token_v =
    std::is_invocable_v<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>;

/// The value type a task's future holds: the callable's result, decayed (as std::async does),
/// so a callable returning a reference yields a future of the referred-to value.
template <class F, class... Args>
using task_result_t = std::decay_t<typename std::conditional_t<
    takes_stop_token_v<F, Args...>,
    std::invoke_result<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>,
    std::invoke_result<std::decay_t<F>, std::decay_t<Args>...>>::type>;

/// Allocates a task block for f(args...) with `refs` initial references.
template <class F, class... Args>
auto* make_task(std::uint32_t refs, std::uint32_t owner, F&& f, Args&&... args) {
    using R = task_result_t<F, Args...>;
    using Fn = decltype(bind_task(std::forward<F>(f), std::forward<Args>(args)...));
    using block = task_block<R, Fn, takes_stop_token_v<F, Args...>>;
    return new block(refs, owner, bind_task(std::forward<F>(f), std::forward<Args>(args)...));
}

}  // namespace muster::detail
