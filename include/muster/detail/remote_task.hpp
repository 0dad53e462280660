// muster/detail/remote_task.hpp: a task block completed from outside, by a process pool's
// supervisor thread, instead of by running a callable in this process.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "muster/detail/task.hpp"

namespace muster::detail {

/// Implemented by an executor that runs tasks elsewhere: asks it to stop the task `t`, which it
/// is running (for a process pool: kill the worker process running it). Thread-safe; never
/// blocks; a task that already finished is ignored.
struct remote_stopper {
    virtual void stop_remote_task(task_base* t) noexcept = 0;

protected:
    ~remote_stopper() = default;
};

/// The block behind a process-pool future. The arguments travel in the executor's job record,
/// so the block holds only the outcome and a way back to the executor.
///
/// Unlike a thread-pool task, a running remote task can be cancelled (F7): future::cancel()
/// moves it from running to cancelled at once and asks the executor to stop it (a process pool
/// kills the worker process running it). The executor's completion then loses the race on the
/// state word (try_complete returns false) and the outcome it built is dropped.
///
/// Ops: run is never called (the task runs in another process); discard has nothing to free;
/// fail stores the error and completes; request_stop is not needed (cancel_running covers a
/// running task); destroy frees the block; cancel_running is F7 plus the stop request.
template <class T>
struct remote_task final : task_result<T> {
    std::weak_ptr<remote_stopper> stopper_;

    remote_task(std::uint32_t refs, std::uint32_t owner, std::weak_ptr<remote_stopper> stopper) noexcept
        : task_result<T>(&ops, refs, owner), stopper_(std::move(stopper)) {}
    ~remote_task() {}

    /// Called by the executor before it hands the task to a worker: pending -> running. False
    /// if the task was cancelled meanwhile; it must then not be dispatched.
    bool try_start() noexcept { return task_base::try_start(); }

    /// Stores the value and completes the task (F7), or drops the value if the task was
    /// cancelled while it ran. Only the executor's completing thread calls this, at most once,
    /// while it holds a reference.
    template <class U>
    void set_value(U&& v) noexcept {
        if constexpr (std::is_void_v<T>) {
            (void)this->try_complete(st_value);
        } else {
            try {
                ::new (static_cast<void*>(std::addressof(this->value_))) T(std::forward<U>(v));
            } catch (...) {
                set_error(std::current_exception());
                return;
            }
            // Lost to a canceller: the phase is cancelled, so destroy_outcome will not touch
            // the slot; nobody reads it, and this thread still holds a reference.
            if (!this->try_complete(st_value)) std::destroy_at(std::addressof(this->value_));
        }
    }
    void set_value() noexcept
        requires std::is_void_v<T>
    {
        (void)this->try_complete(st_value);
    }

    /// Stores `error` and completes the task, or drops it if the task was cancelled meanwhile.
    /// Same calling rules as set_value.
    void set_error(std::exception_ptr error) noexcept {
        ::new (static_cast<void*>(&this->error_)) std::exception_ptr(std::move(error));
        if (!this->try_complete(st_error)) destroy_error(this->error_);
    }

    static void run(task_base*, const std::stop_token&) noexcept { std::terminate(); }
    static void discard(task_base*) noexcept {}
    static void fail(task_base* b, std::exception_ptr error) noexcept {
        static_cast<remote_task*>(b)->set_error(std::move(error));
    }
    static void destroy(task_base* b) noexcept {
        auto* self = static_cast<remote_task*>(b);
        self->destroy_outcome();
        delete self;
    }
    static bool cancel_running(task_base* b) noexcept {
        auto* self = static_cast<remote_task*>(b);
        if (!self->try_cancel_running())
            return self->phase() == st_cancelled;  // finished first, or cancelled by another
        if (auto s = self->stopper_.lock()) s->stop_remote_task(b);
        return true;
    }

    static constexpr task_ops ops{&run, &discard, &fail, nullptr, &destroy, &cancel_running};
};

}  // namespace muster::detail
