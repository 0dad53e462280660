// muster/error.hpp: the library's exception types.
//
// Every error muster raises itself derives from muster::error, so a caller can catch the whole
// family in one clause, or a specific subclass where it needs to react by type. A task's own
// exception is never wrapped: future::result() rethrows exactly what the task threw.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace muster {

/// Base of every exception muster raises itself. Thread-safe to copy and rethrow.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// result() / exception() on a future whose task was cancelled before it started (Python's
/// CancelledError), or on a future cancelled by shutdown({.cancel_pending = true}), terminate()
/// or the discard_oldest overflow policy.
class cancelled_error : public error {
public:
    using error::error;
};

/// A wait with a deadline ran out: future::result(timeout), as_completed(..., timeout), a map
/// range's deadline, or a blocking submit into a full queue with a timeout. Never raised by a
/// task, so a task's own timeout exception cannot be confused with it (Python weakness W5).
class timeout_error : public error {
public:
    using error::error;
};

/// submit/post/map called on an executor that has been shut down.
class shutdown_error : public error {
public:
    using error::error;
};

/// The executor cannot run tasks any more: a worker initializer threw (thread_pool), or worker
/// processes cannot be started (process_pool). Every pending future fails with its own
/// broken_pool instance, and every later submit throws one.
class broken_pool : public error {
public:
    using error::error;
};

/// submit/post into a bounded queue that is full, under overflow_policy::reject (or
/// overflow_policy::block with a timeout that expired; see thread_pool_options).
class queue_full_error : public error {
public:
    using error::error;
};

/// A task that ran in another process failed; the message holds the original exception's type
/// name and message. Used by process-based executors.
class remote_error : public error {
public:
    remote_error(std::string type_name, std::string message)
        : error(type_name + ": " + message),
          type_name_(std::move(type_name)),
          message_(std::move(message)) {}

    /// The dynamic type name of the exception the remote task threw.
    const std::string& type_name() const noexcept { return type_name_; }
    /// The remote exception's what().
    const std::string& message() const noexcept { return message_; }

private:
    std::string type_name_;
    std::string message_;
};

/// An argument or result could not be serialised or deserialised for another process. Fails the
/// one future concerned, never the whole pool.
class serialization_error : public error {
public:
    using error::error;
};

/// An option or argument is invalid (max_workers = 0, min_workers > max_workers, buffersize = 0,
/// an unknown return_when, ...). The message names the option and the valid range.
class invalid_argument : public error {
public:
    using error::error;
};

}  // namespace muster
