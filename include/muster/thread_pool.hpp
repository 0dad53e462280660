// muster/thread_pool.hpp: muster::thread_pool, Python's ThreadPoolExecutor with a work-stealing
// scheduler.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "muster/detail/task.hpp"
#include "muster/error.hpp"
#include "muster/future.hpp"

namespace muster {

/// What submit/post do when queue_capacity > 0 and that many tasks are already queued.
enum class overflow_policy {
    /// Block the submitting thread until there is room (or until block_timeout, then throw
    /// queue_full_error). A submit from one of the pool's own workers never blocks: it runs
    /// the task on the calling worker instead, so a full queue cannot deadlock the pool.
    block,
    /// Throw queue_full_error at once.
    reject,
    /// Run the task on the submitting thread before submit returns (back-pressure by slowing
    /// the producer down, as Java's CallerRunsPolicy does).
    caller_runs,
    /// Cancel the oldest queued task (its future reports cancelled) and queue the new one.
    discard_oldest,
};

/// The number of workers a pool uses when max_workers is not given: the hardware's thread
/// count (at least 1). Python's ThreadPoolExecutor picks min(32, cpu + 4) to favour blocking I/O;
/// muster's scheduler targets CPU-bound work, as oneTBB does, and I/O-bound users set
/// max_workers explicitly (see examples/02_io_bound.cpp).
std::size_t default_max_workers() noexcept;

/// Construction options, used with designated initialisers:
/// `muster::thread_pool pool({.max_workers = 8, .queue_capacity = 1024});`
struct thread_pool_options {
    /// Upper bound on worker threads (>= 1). Workers start lazily: one is added only when a task
    /// is queued and no worker is idle.
    std::size_t max_workers = default_max_workers();
    /// Workers kept alive when idle (<= max_workers). They still start lazily.
    std::size_t min_workers = 0;
    /// A worker idle for this long exits, down to min_workers.
    std::chrono::milliseconds keep_alive = std::chrono::seconds(60);
    /// Worker threads are named `<name_prefix>_<i>` (i in creation order) in the OS; the default
    /// prefix is `muster-<k>` with k a process-wide pool counter. Linux shows 15 characters.
    std::string name_prefix{};
    /// Runs on each new worker before it takes any task. If it throws, the pool is broken:
    /// queued futures fail with broken_pool and later submits throw broken_pool.
    std::function<void()> initializer{};
    /// Receives exceptions nobody else can see: from post() tasks and from done-callbacks.
    /// Called on the thread where it happened. The default prints the exception to stderr. The
    /// worker always survives.
    std::function<void(std::exception_ptr)> on_unhandled_exception{};
    /// Maximum number of queued (not yet started) tasks; 0 means unbounded.
    std::size_t queue_capacity = 0;
    /// What to do when the queue is full.
    overflow_policy overflow = overflow_policy::block;
    /// With overflow_policy::block: how long a submit may wait for room before throwing
    /// queue_full_error; nullopt waits as long as it takes.
    std::optional<std::chrono::milliseconds> block_timeout{};
    /// How long an idle worker searches for work before it parks (the spin window). Longer
    /// lowers wake-up latency for bursty load and costs CPU; after it, an idle pool uses none.
    std::chrono::microseconds spin = std::chrono::microseconds(50);
};

/// Arguments of shutdown().
struct shutdown_options {
    /// Block until every running and queued task has finished and the workers have exited.
    bool wait = true;
    /// Cancel every queued task that has not started (their futures report cancelled).
    bool cancel_pending = false;
};

/// A snapshot of a pool's counters; each field is read without stopping the pool, so the
/// fields may be mutually inconsistent by the tasks that moved while it was taken.
struct pool_stats {
    std::size_t workers = 0;    ///< live worker threads
    std::size_t idle = 0;       ///< workers parked waiting for work
    std::size_t queued = 0;     ///< tasks queued, not yet started (cancelled ones until dropped)
    std::size_t running = 0;    ///< tasks executing now
    std::size_t completed = 0;  ///< tasks that returned normally
    std::size_t failed = 0;     ///< tasks that threw
    std::size_t cancelled = 0;  ///< tasks cancelled before they started
};

/// Options of map() and map_unordered().
struct map_options {
    /// At most this many tasks in flight (submitted, not yet consumed); input is pulled only to
    /// refill. nullopt: 2 * max_workers. 0 is invalid.
    std::optional<std::size_t> buffersize{};
    /// One deadline for the whole iteration, measured from the map() call.
    std::optional<std::chrono::steady_clock::duration> timeout{};
};

namespace detail {
class pool_core;

/// The non-template entry points of the scheduler (src/scheduler/pool_core.cpp).
std::shared_ptr<pool_core> make_pool_core(thread_pool_options options);
std::uint32_t pool_id(const pool_core& core) noexcept;
std::size_t pool_max_workers(const pool_core& core) noexcept;
/// Queues `task`, whose queue reference the caller transfers. Applies the overflow policy and
/// the shutdown/broken checks; on a throw the queue reference has been released.
void pool_enqueue(pool_core& core, task_base* task);
/// Queues `count` tasks with one synchronisation (unbounded queues; bounded ones apply the
/// overflow policy per task). Takes over each task's queue reference; on a throw every task
/// not queued has been released.
void pool_enqueue_bulk(pool_core& core, task_base* const* tasks, std::size_t count);
/// Releases the queue references of tasks that were created but never queued.
inline void drop_unqueued(const std::vector<task_base*>& tasks) noexcept {
    for (task_base* t : tasks) {
        t->try_cancel();
        t->release();
    }
}
/// Whether the calling thread is one of `core`'s workers.
bool on_worker_of(const pool_core& core) noexcept;

template <class F, class... Args>
auto submit_to(pool_core& core, F&& f, Args&&... args) {
    auto* task = make_task(2, pool_id(core), std::forward<F>(f), std::forward<Args>(args)...);
    using R = task_result_t<F, Args...>;
    // The future owns one reference from here on, so a throwing enqueue cannot leak the block.
    auto fut = future_access::adopt<R>(task);
    pool_enqueue(core, task);
    return fut;
}
}  // namespace detail

template <class T, class Source>
class map_range;
template <class T, class Source>
class map_unordered_range;

/// A pool of worker threads running submitted tasks: Python's ThreadPoolExecutor and
/// multiprocessing.pool.ThreadPool, with work stealing, elastic size, bounded queues, helping
/// waits and cancellation.
///
/// Scheduling: each worker owns a deque; tasks submitted by a worker go to its own deque (LIFO for
/// the owner, stolen FIFO by others), tasks submitted from other threads go to a shared injection
/// queue. Idle workers spin for `spin`, then park; an idle pool uses no CPU.
///
/// Thread safety: every member is thread-safe, including submitting from many threads at once,
/// from inside tasks, and calling shutdown while others submit. The destructor must not run
/// concurrently with other members.
///
/// Lifetime: the destructor calls shutdown({.wait = true}): queued tasks still run. Futures and
/// map ranges may outlive the pool; a map range that needs to submit after the pool was shut down
/// throws shutdown_error (it never truncates silently).
class thread_pool {
public:
    /// Creates a pool; no thread starts until the first task is queued (unless min_workers > 0,
    /// which also start lazily, one per queued task). Throws invalid_argument for max_workers == 0
    /// or min_workers > max_workers.
    explicit thread_pool(thread_pool_options options = {});
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    /// shutdown({.wait = true}). Called from one of the pool's own tasks it does not wait for
    /// that task (it cannot), and the remaining workers finish on their own.
    ~thread_pool();

    /// Schedules `f(args...)` (or `f(stop_token, args...)` if f accepts a std::stop_token first)
    /// and returns its future. Arguments are decay-copied into the task, as std::thread does.
    /// Throws shutdown_error after shutdown (from threads outside the pool), broken_pool if an
    /// initializer failed, queue_full_error per the overflow policy. One allocation; lock-free
    /// on a worker thread, one short critical section from other threads.
    template <class F, class... Args>
        requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...> ||
                 std::is_invocable_v<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>
    [[nodiscard]] auto submit(F&& f, Args&&... args) {
        return detail::submit_to(*core_, std::forward<F>(f), std::forward<Args>(args)...);
    }

    /// Fire-and-forget: like submit, without a future. An exception thrown by the task goes to
    /// on_unhandled_exception, never silently dropped.
    template <class F, class... Args>
        requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...> ||
                 std::is_invocable_v<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>
    void post(F&& f, Args&&... args) {
        auto const id = detail::pool_id(*core_);
        auto body = detail::bind_task(std::forward<F>(f), std::forward<Args>(args)...);
        // The task reports its own exception instead of storing it: nobody holds its future.
        detail::task_base* task;
        if constexpr (detail::takes_stop_token_v<F, Args...>) {
            task = detail::make_task(1, id, [body = std::move(body), id](std::stop_token st) mutable {
                try {
                    (void)std::move(body)(std::move(st));
                } catch (...) {
                    detail::report_unhandled(id, std::current_exception(), "a posted task threw");
                    throw;  // stored in the unobserved task: stats() counts it as failed
                }
            });
        } else {
            task = detail::make_task(1, id, [body = std::move(body), id]() mutable {
                try {
                    (void)std::move(body)();
                } catch (...) {
                    detail::report_unhandled(id, std::current_exception(), "a posted task threw");
                    throw;  // stored in the unobserved task: stats() counts it as failed
                }
            });
        }
        detail::pool_enqueue(*core_, task);
    }

    /// Submits `count` tasks, task i calling `f(i)` (f is copied into each task), queued with
    /// one synchronisation; returns their futures in index order. Throws like submit(); then no
    /// task was queued, except with a bounded queue, where the overflow policy applies task by
    /// task and the tasks queued before the refused one stay queued.
    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&, std::size_t>
    [[nodiscard]] auto submit_bulk(std::size_t count, F&& f) {
        using R = detail::task_result_t<std::decay_t<F>&, std::size_t>;
        auto const id = detail::pool_id(*core_);
        std::vector<future<R>> futures;
        futures.reserve(count);
        std::vector<detail::task_base*> tasks;
        tasks.reserve(count);
        try {
            for (std::size_t i = 0; i < count; ++i) {
                auto* t = detail::make_task(2, id, f, i);
                futures.push_back(detail::future_access::adopt<R>(t));
                tasks.push_back(t);
            }
        } catch (...) {
            detail::drop_unqueued(tasks);
            throw;
        }
        detail::pool_enqueue_bulk(*core_, tasks.data(), tasks.size());
        return futures;
    }

    /// Fire-and-forget form of submit_bulk: `count` tasks calling `f(i)`, one synchronisation.
    /// Exceptions go to on_unhandled_exception.
    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&, std::size_t>
    void post_bulk(std::size_t count, F&& f) {
        auto const id = detail::pool_id(*core_);
        std::vector<detail::task_base*> tasks;
        tasks.reserve(count);
        try {
            for (std::size_t i = 0; i < count; ++i) {
                tasks.push_back(detail::make_task(1, id, [f, i, id]() mutable {
                try {
                    (void)f(i);
                } catch (...) {
                    detail::report_unhandled(id, std::current_exception(), "a posted task threw");
                    throw;  // counted as failed in stats()
                }
            }));
            }
        } catch (...) {
            detail::drop_unqueued(tasks);
            throw;
        }
        detail::pool_enqueue_bulk(*core_, tasks.data(), tasks.size());
    }

    /// Applies `f` to each element of `input` on the pool, yielding results in input order: a
    /// lazy input range. At most `buffersize` tasks are in flight; input is pulled only to refill,
    /// so infinite ranges work. An element whose task threw rethrows when it is reached, and
    /// iteration may continue past it. The deadline (`timeout`) counts from this call; when it
    /// passes, the element being waited for throws timeout_error, pending tasks are cancelled and
    /// the iteration ends. Dropping the range cancels the tasks not yet started. An lvalue `input`
    /// is referenced (it must outlive the range); an rvalue is moved into the range.
    /// Throws invalid_argument for buffersize == 0. Not thread-safe: one consumer per range.
    template <class F, class Range>
    auto map(F&& f, Range&& input, map_options options = {});

    /// As map(), but yields results in completion order, with the same input discipline.
    template <class F, class Range>
    auto map_unordered(F&& f, Range&& input, map_options options = {});

    /// Blocks until no task is queued or running (seed 001's wait_for_complete, BS's wait()).
    /// Called from one of the pool's own tasks, it runs queued tasks and returns when everything
    /// but the calling task is done.
    void wait_idle();

    /// Stops accepting tasks from outside the pool (submit then throws shutdown_error); tasks the
    /// pool's own running tasks submit are still accepted while they drain, unless
    /// cancel_pending. With cancel_pending, queued tasks are cancelled. With wait, blocks until
    /// every task has ended and the workers have exited. Idempotent; safe from any thread,
    /// including the pool's own tasks (which are not waited for: a task cannot wait for itself).
    void shutdown(shutdown_options options = {});

    /// Seed 002's terminate: shuts down, cancels every queued task, requests stop on running
    /// tasks that take a std::stop_token, and returns once running tasks have ended.
    void terminate();

    /// A snapshot of the pool's counters.
    pool_stats stats() const;

    /// The configured max_workers.
    std::size_t max_workers() const noexcept;

private:
    template <class T, class Source>
    friend class map_range;
    template <class T, class Source>
    friend class map_unordered_range;

    std::shared_ptr<detail::pool_core> core_;
};

}  // namespace muster

#include "muster/map.hpp"  // the definitions of thread_pool::map and map_unordered
