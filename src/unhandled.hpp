// The process-wide table of unhandled-exception handlers, keyed by executor id. Tasks carry
// their executor's id (not a pointer), so report_unhandled() stays safe after the executor is
// gone: it then falls back to printing on stderr.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <string>

namespace muster::detail {

/// A fresh executor id (never 0).
std::uint32_t next_executor_id() noexcept;

/// Registers the handler of executor `id`; `name` is used in the default message. An empty
/// `handler` means the default: print to stderr.
void register_unhandled_handler(std::uint32_t id, std::string name,
                                std::function<void(std::exception_ptr)> handler);
void unregister_unhandled_handler(std::uint32_t id) noexcept;

/// "<dynamic type>: <what()>" for an exception, or "unknown exception" for non-std ones.
std::string describe_exception(const std::exception_ptr& error);

}  // namespace muster::detail
