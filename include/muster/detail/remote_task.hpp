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
/// Ops: run is never called (the task runs in another process); discard has nothing to free;
/// fail stores the error and completes; request_stop asks the executor to stop the running task
/// (future::request_stop on a running task kills its worker process); destroy frees the block.
template <class T>
struct remote_task final : task_result<T> {
    std::weak_ptr<remote_stopper> stopper_;

    remote_task(std::uint32_t refs, std::uint32_t owner, std::weak_ptr<remote_stopper> stopper) noexcept
        : task_result<T>(&ops, refs, owner), stopper_(std::move(stopper)) {}
    ~remote_task() {}

    /// Called by the executor before it hands the task to a worker: pending -> running. False
    /// if the task was cancelled meanwhile; it must then not be dispatched.
    bool try_start() noexcept { return task_base::try_start(); }

    /// Stores the value and completes the task (F2). Only the executor's completing thread
    /// calls this, once, while the phase is pending or running.
    template <class U>
    void set_value(U&& v) noexcept {
        if constexpr (std::is_void_v<T>) {
            this->complete(st_value);
        } else {
            try {
                ::new (static_cast<void*>(std::addressof(this->value_))) T(std::forward<U>(v));
            } catch (...) {
                set_error(std::current_exception());
                return;
            }
            this->complete(st_value);
        }
    }
    void set_value() noexcept
        requires std::is_void_v<T>
    {
        this->complete(st_value);
    }

    /// Stores `error` and completes the task. Same calling rules as set_value.
    void set_error(std::exception_ptr error) noexcept {
        ::new (static_cast<void*>(&this->error_)) std::exception_ptr(std::move(error));
        this->complete(st_error);
    }

    static void run(task_base*, const std::stop_token&) noexcept { std::terminate(); }
    static void discard(task_base*) noexcept {}
    static void fail(task_base* b, std::exception_ptr error) noexcept {
        static_cast<remote_task*>(b)->set_error(std::move(error));
    }
    static void stop(task_base* b) noexcept {
        if (auto s = static_cast<remote_task*>(b)->stopper_.lock()) s->stop_remote_task(b);
    }
    static void destroy(task_base* b) noexcept {
        auto* self = static_cast<remote_task*>(b);
        self->destroy_outcome();
        delete self;
    }

    static constexpr task_ops ops{&run, &discard, &fail, &stop, &destroy};
};

}  // namespace muster::detail
