// Stress for detail::spin_mutex (the injection queue's lock; docs/design/scheduler.md,
// "Injection"): more threads than cores contend for it, so holders are preempted and waiters
// take the sleeping path as well as the spinning one. Checked by counting: a plain (non-atomic)
// counter and a two-field invariant updated under the lock must come out exact; ThreadSanitizer
// checks that each critical section happens-after the previous one. Scales with
// MUSTER_STRESS_SCALE (divided by 10 under ThreadSanitizer).
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <fstream>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <muster/detail/spin_mutex.hpp>

#include "pool_test_support.hpp"

namespace {

TEST(SpinMutexStress, ContendedCountingIsExact) {
    constexpr std::size_t threads = 8;  // more than the cores of any CI machine we use
    std::size_t const per_thread = muster_test::stress_count(200'000);
    muster::detail::spin_mutex mu;
    std::size_t counter = 0;  // guarded by mu
    std::size_t a = 0, b = 0;  // guarded by mu; invariant a == b outside the lock
    std::size_t broken = 0;    // guarded by mu
    std::latch go(threads);
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            go.arrive_and_wait();
            for (std::size_t i = 0; i < per_thread; ++i) {
                std::lock_guard lock(mu);
                if (a != b) ++broken;
                ++a;
                ++counter;
                if (i % 64 == 0) std::this_thread::yield();  // get preempted while holding it
                ++b;
            }
        });
    for (auto& th : pool) th.join();
    std::lock_guard lock(mu);
    EXPECT_EQ(counter, threads * per_thread);
    EXPECT_EQ(a, b);
    EXPECT_EQ(broken, 0u);
}

/// Whether thread `tid` of this process is asleep (state S in /proc), e.g. in a futex wait.
bool asleep(pid_t tid) {
    std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) return false;
    auto const close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'S';
}

// A thread asleep on the lock (the kernel path, after its spin) is woken by the unlock, every
// time. The holder waits until the waiter is asleep (a bounded poll; if it never sees it, the
// round still checks the hand-off, through the spinning path).
TEST(SpinMutexStress, SleepersAreWoken) {
    std::size_t const rounds = muster_test::stress_count(200);
    muster::detail::spin_mutex mu;
    for (std::size_t r = 0; r < rounds; ++r) {
        mu.lock();
        std::atomic<pid_t> tid{0};
        bool got = false;
        std::thread waiter([&] {
            tid.store(static_cast<pid_t>(::gettid()), std::memory_order_release);
            std::lock_guard lock(mu);  // spins, then sleeps: the holder keeps it meanwhile
            got = true;
        });
        pid_t t = 0;
        while ((t = tid.load(std::memory_order_acquire)) == 0) std::this_thread::yield();
        for (int i = 0; i < 20'000 && !asleep(t); ++i) std::this_thread::yield();
        mu.unlock();
        waiter.join();  // hangs (CTest timeout) if the unlock does not wake it
        EXPECT_TRUE(got);
    }
}

}  // namespace
