// muster/detail/spin_mutex.hpp: a mutex for very short critical sections under contention: it
// spins briefly before it sleeps. See docs/design/scheduler.md, "Injection".
//
// std::mutex (glibc's default kind) goes to the kernel as soon as it finds the lock held: the
// waiter futex-waits and the holder's unlock futex-wakes it, about two system calls for a
// critical section of a few pointer writes. With one producer and two workers on two cores,
// that made about one system call per task in the fire-and-forget benchmark (W2). Spinning for a
// bounded number of polls first usually finds the lock free again (the holder is running on the
// other core), and only a holder that was preempted sends the waiter to the kernel.
#pragma once

#include <atomic>
#include <cstdint>

#include "muster/detail/parking.hpp"

namespace muster::detail {

inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// BasicLockable. Invariant on state_: 0 = free, 1 = held, 2 = held and a thread may be asleep
/// on it (Drepper's three-state futex mutex, "Futexes Are Tricky", mutex 2).
class spin_mutex {
public:
    void lock() noexcept {
        std::uint32_t expected = 0;
        // acquire: the critical section happens-after the previous holder's release in unlock.
        if (state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                           std::memory_order_relaxed))
            return;
        lock_slow();
    }

    void unlock() noexcept {
        // release: publishes the critical section to the next holder. Seeing 2 means a waiter may
        // be asleep (it stored 2 before parking): wake one; it stores 2 again when it gets the
        // lock, so the others are woken in turn.
        if (state_.exchange(0, std::memory_order_release) == 2) unpark_one(state_);
    }

private:
    void lock_slow() noexcept {
        // Spin: poll with plain loads (no cache-line ping-pong) and try when it looks free.
        for (int i = 0; i < spin_polls; ++i) {
            spin_pause();
            std::uint32_t expected = 0;
            if (state_.load(std::memory_order_relaxed) == 0 &&
                state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                               std::memory_order_relaxed))
                return;
        }
        // Sleep: announce a waiter by storing 2; the exchange returning 0 means we took the lock
        // (held as 2, so our unlock wakes a possible other sleeper: at most one spurious wake).
        while (state_.exchange(2, std::memory_order_acquire) != 0) park(state_, 2, std::nullopt);
    }

    /// About 1-3 microseconds of polling (a pause is tens of cycles), far longer than the
    /// critical sections this lock protects, far shorter than a sleep and a wake-up.
    static constexpr int spin_polls = 100;
    std::atomic<std::uint32_t> state_{0};
};

}  // namespace muster::detail
