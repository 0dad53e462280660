// muster-example-needs: process
// A process pool runs registered functions in worker processes: the same CPU-bound work on
// threads and on processes, then a task that crashes its worker while the others finish.
//
// Workers are this program, re-executed: muster::init must be the first line of main.
#include <muster/process.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <ranges>
#include <vector>

namespace {

// Counts the primes below n by trial division: pure CPU work.
std::int64_t count_primes(std::int64_t n) {
    std::int64_t count = 0;
    for (std::int64_t k = 2; k < n; ++k) {
        bool prime = true;
        for (std::int64_t d = 2; d * d <= k; ++d)
            if (k % d == 0) {
                prime = false;
                break;
            }
        count += prime;
    }
    return count;
}

// A task with a bug: for one input it dereferences a null pointer (here: raises SIGSEGV).
std::int64_t fragile(std::int64_t n) {
    if (n == 3) std::raise(SIGSEGV);
    return count_primes(n);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    muster::init(argc, argv);  // in a worker process this never returns

    std::vector<std::int64_t> const inputs(8, 250'000);
    std::size_t const workers = 2;

    {
        auto const t0 = std::chrono::steady_clock::now();
        muster::thread_pool threads({.max_workers = workers});
        std::int64_t total = 0;
        for (auto v : threads.map(count_primes, inputs)) total += v;
        std::printf("threads:   %lld primes in %.3f s\n", static_cast<long long>(total),
                    seconds_since(t0));
    }
    {
        auto const t0 = std::chrono::steady_clock::now();
        muster::process_pool processes({.max_workers = workers});
        std::int64_t total = 0;
        for (auto v : processes.map<&count_primes>(inputs, {.chunksize = 2})) total += v;
        std::printf("processes: %lld primes in %.3f s (includes starting %zu workers)\n",
                    static_cast<long long>(total), seconds_since(t0), workers);
    }

    std::printf("\nOne task crashes its worker; only that task fails:\n");
    muster::process_pool pool({.max_workers = workers});
    std::vector<muster::future<std::int64_t>> futures;
    for (std::int64_t i = 1; i <= 6; ++i) futures.push_back(pool.submit<&fragile>(i * 1000));
    futures.push_back(pool.submit<&fragile>(3));
    int failed = 0;
    for (auto& f : futures) {
        try {
            std::printf("  ok:     %lld\n", static_cast<long long>(f.result()));
        } catch (const muster::worker_lost_error& e) {
            std::printf("  failed: %s\n", e.what());
            ++failed;
        }
    }
    std::printf("after the crash the pool still works: %lld primes below 100\n",
                static_cast<long long>(pool.submit<&count_primes>(100).result()));
    return failed == 1 ? 0 : 1;
}
