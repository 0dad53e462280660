// muster/future.hpp: muster::future<T>, a counted handle to one task's outcome.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <future>
#include <type_traits>
#include <utility>

#include "muster/detail/task.hpp"
#include "muster/error.hpp"

namespace muster {

template <class T>
class future;

namespace detail {
struct future_access;
[[noreturn]] void throw_cancelled();
[[noreturn]] void throw_no_state();
[[noreturn]] void throw_result_timeout();
}  // namespace detail

/// The outcome of a task submitted to an executor: Python's concurrent.futures.Future, without
/// std::promise.
///
/// A future is a cheap handle (one pointer) to the task block; copies share the task, like
/// Python's futures, so several parties can wait on one task. A default-constructed or
/// moved-from future has no task: valid() is false and every other member except the
/// destructor and assignment throws muster::error.
///
/// States: pending -> running -> finished (value or exception); pending -> cancelled (and, for
/// a process pool's task, running -> cancelled). Once done, a future never changes again.
///
/// Thread safety: every member is thread-safe; distinct handles to the same task may be used
/// from any threads at once. One handle object must not be assigned to while it is used.
///
/// Blocking members (wait, result, exception, and their timed forms), when called on a worker
/// thread of a muster pool, run other queued tasks while they wait, so a task that waits for
/// another task cannot deadlock the pool, even a pool of one worker.
template <class T>
class future {
public:
    using value_type = T;

    /// A future with no task (valid() == false).
    future() noexcept = default;
    future(const future& other) noexcept : task_(other.task_) {
        if (task_) task_->add_ref();
    }
    future(future&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
    future& operator=(const future& other) noexcept {
        future(other).swap(*this);
        return *this;
    }
    future& operator=(future&& other) noexcept {
        future(std::move(other)).swap(*this);
        return *this;
    }
    ~future() {
        if (task_) task_->release();
    }
    void swap(future& other) noexcept { std::swap(task_, other.task_); }

    /// Whether this handle refers to a task.
    bool valid() const noexcept { return task_ != nullptr; }

    /// True once the task finished (value or exception) or was cancelled. Never blocks.
    bool done() const { return detail::phase_done(state()); }
    /// True while the task's callable is executing. Never blocks.
    bool running() const { return (state() & detail::st_phase_mask) == detail::st_running; }
    /// True if cancel() (or a pool-initiated cancellation) succeeded. Never blocks.
    bool cancelled() const { return (state() & detail::st_phase_mask) == detail::st_cancelled; }

    /// Cancels the task if it has not started: returns true and the future is done at once,
    /// for every waiter (result(), wait(), muster::wait, as_completed) and the done-callbacks run
    /// on this thread. Returns true again if it was already cancelled; returns false if the task
    /// finished. A running task of a thread pool cannot be cancelled (false; use request_stop()
    /// to ask it to stop); a running task of a process pool is cancelled the same way (true, done
    /// at once) and its worker process is killed and replaced. O(1).
    bool cancel() {
        check();
        if (task_->try_cancel() || cancelled()) return true;
        auto const cancel_running = task_->ops_->cancel_running;
        return cancel_running && cancel_running(task_);
    }

    /// Cancels the task if it is pending; if it is running and its callable takes a
    /// std::stop_token, requests stop on that token. Returns true if either happened.
    bool request_stop() {
        check();
        if (cancel()) return true;
        if (task_->ops_->request_stop && running()) {
            task_->ops_->request_stop(task_);
            return true;
        }
        return false;
    }

    /// Blocks until the task is done. See the class comment for calls made on a worker thread.
    void wait() const {
        check();
        detail::wait_task(*task_, std::nullopt);
    }

    /// Blocks until the task is done or `timeout` elapses; a zero or negative timeout polls.
    /// Returns std::future_status::ready or std::future_status::timeout; never throws
    /// timeout_error and never changes the task.
    template <class Rep, class Period>
    std::future_status wait_for(std::chrono::duration<Rep, Period> timeout) const {
        check();
        return detail::wait_task(*task_, detail::deadline_after(timeout))
                   ? std::future_status::ready
                   : std::future_status::timeout;
    }

    /// Like wait_for, with an absolute deadline on the steady clock.
    std::future_status wait_until(detail::clock::time_point deadline) const {
        check();
        return detail::wait_task(*task_, deadline) ? std::future_status::ready
                                                   : std::future_status::timeout;
    }

    /// Blocks until done, then returns the value (a reference to the value held in the task;
    /// it stays valid while any handle exists), rethrows the task's exception unchanged, or
    /// throws cancelled_error. For void, returns nothing.
    decltype(auto) result() const& {
        wait();
        return get_const();
    }
    /// As above, but moves the value out of the task (for move-only results, and to avoid a
    /// copy): other handles to the same task then see a moved-from value.
    decltype(auto) result() && {
        wait();
        return take();
    }
    /// As result(), but throws timeout_error if the task is not done within `timeout` (a zero or
    /// negative timeout polls). The task is not changed by a timeout.
    template <class Rep, class Period>
    decltype(auto) result(std::chrono::duration<Rep, Period> timeout) const& {
        if (wait_for(timeout) != std::future_status::ready) detail::throw_result_timeout();
        return get_const();
    }
    template <class Rep, class Period>
    decltype(auto) result(std::chrono::duration<Rep, Period> timeout) && {
        if (wait_for(timeout) != std::future_status::ready) detail::throw_result_timeout();
        return take();
    }

    /// Blocks until done; returns the task's exception, or a null exception_ptr if it returned a
    /// value. Throws cancelled_error if cancelled.
    std::exception_ptr exception() const {
        wait();
        return get_exception();
    }
    /// As exception(), but throws timeout_error if not done within `timeout`.
    template <class Rep, class Period>
    std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
        if (wait_for(timeout) != std::future_status::ready) detail::throw_result_timeout();
        return get_exception();
    }

    /// Calls `fn(const future<T>&)` exactly once when the task is done (value, exception or
    /// cancellation). Callbacks run in the order they were added, on the thread that completes
    /// the task (a worker, or the thread that cancels it), after waiters were woken. If the task
    /// is already done, `fn` runs at once on this thread. An exception thrown by `fn` goes to the
    /// owning pool's on_unhandled_exception handler and never stops the other callbacks.
    /// Allocates one node for `fn`.
    template <class Fn>
        requires std::is_invocable_v<std::decay_t<Fn>&, const future<T>&>
    void add_done_callback(Fn&& fn) const {
        check();
        auto* hook = new callback_hook<std::decay_t<Fn>>(std::forward<Fn>(fn));
        if (!task_->add_hook(hook)) hook->on_complete(*task_);
    }

private:
    friend struct detail::future_access;
    using block = detail::task_result<T>;

    explicit future(block* adopted) noexcept : task_(adopted) {}

    std::uint32_t state() const {
        check();
        return task_->state_.load(std::memory_order_acquire);
    }
    void check() const {
        if (!task_) detail::throw_no_state();
    }
    void rethrow_if_failed() const {
        auto const p = task_->phase();
        if (p == detail::st_cancelled) detail::throw_cancelled();
        if (p == detail::st_error) std::rethrow_exception(task_->error_);
    }
    decltype(auto) get_const() const {
        rethrow_if_failed();
        if constexpr (std::is_void_v<T>) return;
        else return static_cast<const T&>(task_->value_);
    }
    T take() {
        rethrow_if_failed();
        if constexpr (!std::is_void_v<T>) return std::move(task_->value_);
    }
    std::exception_ptr get_exception() const {
        auto const p = task_->phase();
        if (p == detail::st_cancelled) detail::throw_cancelled();
        return p == detail::st_error ? task_->error_ : std::exception_ptr{};
    }

    template <class Fn>
    struct callback_hook final : detail::completion_hook {
        Fn fn;
        template <class F>
        explicit callback_hook(F&& f) : fn(std::forward<F>(f)) {}
        void on_complete(detail::task_base& t) noexcept override {
            auto& task = static_cast<block&>(t);
            try {
                task.add_ref();
                future const self(&task);
                fn(self);
            } catch (...) {
                detail::report_unhandled(t.owner_id_, std::current_exception(),
                                         "a done-callback threw");
            }
            delete this;
        }
    };

    block* task_ = nullptr;
};

namespace detail {
/// Internal access to a future's task, for executors and the algorithms over futures.
struct future_access {
    template <class T>
    static future<T> adopt(task_result<T>* t) noexcept {
        return future<T>(t);
    }
    template <class T>
    static task_result<T>* task(const future<T>& f) noexcept {
        return f.task_;
    }
    /// Cancels the task only if it has not started (F1), even where cancel() would also stop a
    /// running one (a process pool's task): for clean-ups documented as "cancels what has not
    /// started". Returns whether this call cancelled it.
    template <class T>
    static bool cancel_pending(const future<T>& f) noexcept {
        return f.task_ && f.task_->try_cancel();
    }
};
}  // namespace detail

}  // namespace muster
