// muster/detail/parking.hpp: block a thread on a 32-bit atomic word, with an optional deadline.
//
// C++20's std::atomic::wait has no timed form, and result(timeout), as_completed(timeout) and the
// workers' keep_alive all need one, so muster parks on the word itself: futex on Linux, a hashed
// table of mutex/condition-variable pairs elsewhere. The contract is the futex one:
//
//   park(word, expected, deadline) blocks only while word == expected (checked atomically with
//   going to sleep), returns on unpark, on the deadline, or spuriously. Callers always re-check
//   their condition in a loop (Python weakness W16).
//
//   unpark_*(word) wakes threads parked on word. It does not read or write the word itself, so
//   the waker changes the word first (the change is what the waiter re-checks), then unparks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace muster::detail {

using clock = std::chrono::steady_clock;
using deadline_t = std::optional<clock::time_point>;

/// Blocks while `word` holds `expected`, until woken or `deadline` passes (nullopt: no deadline).
/// Returns false if the deadline passed, true otherwise (woken, value changed, or spurious).
bool park(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
          deadline_t deadline) noexcept;

/// Wakes one thread parked on `word`.
void unpark_one(const std::atomic<std::uint32_t>& word) noexcept;

/// Wakes every thread parked on `word`.
void unpark_all(const std::atomic<std::uint32_t>& word) noexcept;

/// Converts a relative timeout to a deadline on the monotonic clock; negative means "now".
template <class Rep, class Period>
clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
    if (d <= d.zero()) return clock::now();
    auto const now = clock::now();
    // Saturate instead of overflowing for "effectively infinite" timeouts.
    if (d > std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(
                clock::time_point::max() - now))
        return clock::time_point::max();
    return now + std::chrono::duration_cast<clock::duration>(d);
}

}  // namespace muster::detail
