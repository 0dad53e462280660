// 02: I/O-bound jobs: more workers than cores pay off when the tasks mostly wait.
//
// 50 jobs each block for ~100 ms (a sleep stands in for a network or disk wait). The same batch
// runs through pool.map on a pool of 5 workers and then on a pool of 50, as in Python:
//
//     with ThreadPoolExecutor(max_workers=5) as ex:
//         sizes = list(ex.map(fake_io, range(50)))
//
// With 5 workers the jobs run in 10 waves (~1 s); with 50 they all wait at once (~0.1 s).
//
// muster's default max_workers is the hardware thread count, sized for CPU-bound work; Python
// picks min(32, cpu + 4) to leave room for blocking calls. For I/O-bound jobs, say how many
// should wait at once, as here.
//
// Timings depend on the machine, so the only hard checks are that every job ran, results came
// back in input order, and no more jobs ran at once than the pool has workers.

#include <muster/muster.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <ranges>
#include <thread>
#include <vector>

namespace {

constexpr int job_count = 50;

// How many jobs are inside fake_io right now, and the most there ever were at once.
std::atomic<int> active{0};
std::atomic<int> peak{0};

// A job that spends ~100 ms waiting for "I/O" and returns a made-up response size.
int fake_io(int job) {
    int const now = active.fetch_add(1) + 1;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the "I/O"
    active.fetch_sub(1);
    return 1000 + job;
}

struct run_result {
    double seconds = 0;
    bool ok = false;
};

run_result run_batch(std::size_t workers) {
    peak = 0;
    auto const start = std::chrono::steady_clock::now();
    std::vector<int> sizes;
    {
        muster::thread_pool pool({.max_workers = workers});
        // map is lazy: at most buffersize (default 2 * max_workers) jobs are in flight, and
        // results come back in input order.
        for (int size : pool.map(fake_io, std::views::iota(0, job_count))) sizes.push_back(size);
    }  // leaving the scope shuts the pool down and joins its threads, like `with`
    double const seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    bool in_order = sizes.size() == static_cast<std::size_t>(job_count);
    for (std::size_t i = 0; in_order && i < sizes.size(); ++i)
        in_order = sizes[i] == 1000 + static_cast<int>(i);
    bool const bounded = peak.load() <= static_cast<int>(workers);
    std::printf("  %2zu workers: %2zu jobs in %.3f s, at most %d waiting at once%s\n", workers,
                sizes.size(), seconds, peak.load(),
                in_order && bounded ? "" : "  <- check FAILED");
    return {seconds, in_order && bounded};
}

}  // namespace

int main() {
    std::printf("%d jobs, each blocking ~100 ms:\n", job_count);
    run_result const small = run_batch(5);
    run_result const large = run_batch(50);
    std::printf("speed-up with 50 workers: %.1fx (ideal: 10x)\n",
                small.seconds / std::max(large.seconds, 1e-9));
    bool const ok = small.ok && large.ok;
    std::printf("%s\n", ok ? "check: every job completed, in order, within the worker bound"
                           : "check FAILED");
    return ok ? 0 : 1;
}
