// 07: recursive fork-join: tasks that submit tasks and wait for them.
//
// fib(n) forks fib(n - 1) as a task on the pool, computes fib(n - 2) itself, then joins with
// child.result(). Below a cutoff (n < 12) it computes serially, so that tasks are not too
// small to be worth scheduling.
//
// In Python this deadlocks:
//
//     ex = ThreadPoolExecutor(max_workers=1)
//     def fib(n):
//         if n < 12: return serial_fib(n)
//         child = ex.submit(fib, n - 1)
//         return fib(n - 2) + child.result()   # the only worker blocks here for ever: the
//                                              # child sits in the queue behind it
//     ex.submit(fib, 25).result()
//
// and with more workers it still deadlocks as soon as the recursion is deeper than the pool is
// wide. In muster, result() (like wait(), muster::wait and as_completed) called on one of the
// pool's workers does not just block: it runs other queued tasks (its own children first)
// until the awaited future is done. So the same code finishes on a pool of one worker, and on
// two it also shares the work by stealing.
//
// The tasks here are deliberately tiny (fib(11) and below run serially inside each), so the
// times mostly measure scheduling; the point is that every join completes.

#include <muster/muster.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>

namespace {

constexpr int cutoff = 12;
constexpr int n = 25;
constexpr int expected = 75025;  // fib(25)

int serial_fib(int k) { return k < 2 ? k : serial_fib(k - 1) + serial_fib(k - 2); }

std::atomic<long> forks{0};

int fib(muster::thread_pool& pool, int k) {
    if (k < cutoff) return serial_fib(k);
    auto child = pool.submit([&pool, k] { return fib(pool, k - 1); });  // fork
    forks.fetch_add(1, std::memory_order_relaxed);
    int const other = fib(pool, k - 2);
    return child.result() + other;  // join: helps the pool while it waits
}

bool run(std::size_t workers) {
    forks = 0;
    auto const start = std::chrono::steady_clock::now();
    muster::thread_pool pool({.max_workers = workers});
    // The root is a task too, so that every join happens on a worker.
    int const result = pool.submit([&pool] { return fib(pool, n); }).result();
    double const ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();
    bool const ok = result == expected;
    std::printf("  %zu worker%s: fib(%d) = %d, %ld tasks forked and joined, %.1f ms%s\n", workers,
                workers == 1 ? " " : "s", n, result, forks.load(), ms,
                ok ? "" : "  <- check FAILED");
    return ok;
}

}  // namespace

int main() {
    auto const start = std::chrono::steady_clock::now();
    int const serial = serial_fib(n);
    double const serial_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();
    std::printf("fork-join fib(%d), serial below n = %d:\n", n, cutoff);
    std::printf("  serial:    fib(%d) = %d, %.1f ms\n", n, serial, serial_ms);
    bool const one = run(1);  // would deadlock in Python
    bool const two = run(2);
    bool const ok = one && two && serial == expected;
    std::printf("%s\n", ok ? "check: fib(25) = 75025 on one worker and on two, no deadlock"
                           : "check FAILED");
    return ok ? 0 : 1;
}
