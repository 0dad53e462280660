// bench/src/process_workloads.hpp: the process-pool workloads P1-P3 for muster::process_pool
// (peer muster-proc). bench/python/pypeers.py runs the same workloads with Python's
// ProcessPoolExecutor (peer py-ppe).
//
// The workers are this program re-executed, so main calls muster::init(argc, argv) first
// (main.cpp), and the task functions below are registered in every process of it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <latch>
#include <memory>
#include <ranges>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <muster/process.hpp>

#include "output.hpp"
#include "workloads.hpp"

namespace muster_bench {

// ---- task functions (run in the worker processes) ----------------------------------------------

/// The tiny task of P1 and P2 (64-bit result: P2 squares inputs up to 99,999).
inline std::int64_t proc_square(int x) { return std::int64_t(x) * x; }

/// {pid, steady_clock now in ns}, taken when the task starts, then holds its worker for
/// `hold_ms` so that every task of a P3 batch lands on a worker of its own. steady_clock is
/// CLOCK_MONOTONIC, the same clock in every process.
inline std::vector<std::int64_t> proc_stamp_and_hold(int hold_ms) {
    std::int64_t const now = clk::now().time_since_epoch().count();
    std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
    return {std::int64_t(::getpid()), now};
}

// ---- P1: round-trip latency --------------------------------------------------------------------

/// Two client threads (one per worker), each: submit one tiny task, wait for its result, repeat.
/// Every round trip (submit to result) is a sample.
inline void proc_round_trip(const params& p) {
    muster::process_pool pool({.max_workers = p.workers, .lazy = false});
    unsigned const clients = p.workers;
    std::vector<std::vector<double>> samples(clients);
    std::vector<std::thread> threads;
    std::latch go(clients + 1);
    for (unsigned c = 0; c < clients; ++c)
        threads.emplace_back([&, c] {
            auto& us = samples[c];
            us.reserve(std::size_t(p.p1_round_trips));
            for (int i = 0; i < p.p1_warmup; ++i) (void)pool.submit<&proc_square>(i).result();
            go.arrive_and_wait();
            for (int i = 0; i < p.p1_round_trips; ++i) {
                auto const t0 = clk::now();
                std::int64_t const r = pool.submit<&proc_square>(i).result();
                us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
                if (r != std::int64_t(i) * i) us.back() = -1;
            }
        });
    go.arrive_and_wait();
    auto const t0 = clk::now();
    for (auto& t : threads) t.join();
    double const s = seconds_since(t0);
    std::vector<double> all;
    for (auto& v : samples) all.insert(all.end(), v.begin(), v.end());
    if (std::any_of(all.begin(), all.end(), [](double x) { return x < 0; })) {
        emit_status("P1", "check_failed", "a result is wrong");
        return;
    }
    std::sort(all.begin(), all.end());
    std::size_t const n = all.size();
    auto rank = [&](double q) { return all[std::min<std::size_t>(n - 1, std::size_t(q * double(n - 1) + 0.5))]; };
    emit("P1", "p50_us", rank(0.50), "us");
    emit("P1", "p90_us", rank(0.90), "us");
    emit("P1", "p99_us", rank(0.99), "us");
    emit("P1", "round_trips_per_s", double(n) / s, "1/s");
}

// ---- P2: throughput on tiny tasks --------------------------------------------------------------

/// map<&proc_square> over 0..n-1 with chunksize 1, then with the automatic chunk size; the
/// results are summed and checked. One pool, warmed by an untimed map first.
inline void proc_map_throughput(const params& p) {
    muster::process_pool pool({.max_workers = p.workers, .lazy = false});
    int const n = int(p.p2_tasks);
    std::int64_t expect = 0;
    for (int i = 0; i < n; ++i) expect += std::int64_t(i) * i;
    for (std::int64_t v : pool.map<&proc_square>(std::views::iota(0, 1000))) (void)v;
    auto run = [&](muster::process_map_options o) {
        auto const t0 = clk::now();
        std::int64_t sum = 0;
        for (std::int64_t v : pool.map<&proc_square>(std::views::iota(0, n), o)) sum += v;
        double const s = seconds_since(t0);
        return sum == expect ? s : -1.0;
    };
    double const s1 = run({.chunksize = 1});
    double const sa = run({});
    if (s1 < 0 || sa < 0) {
        emit_status("P2", "check_failed", "sum of results is wrong");
        return;
    }
    emit("P2", "tasks_per_s_chunk1", double(n) / s1, "1/s");
    emit("P2", "tasks_per_s_chunked", double(n) / sa, "1/s");
    // The automatic size process_map_options documents (py-ppe's chunked run uses the same).
    std::size_t const parts = 4 * std::size_t(p.workers);
    emit("P2", "chunksize", double(std::min<std::size_t>(1024, (std::size_t(n) + parts - 1) / parts)), "inputs");
    emit("P2", "n_tasks", double(n), "tasks");
}

// ---- P3: worker start time ---------------------------------------------------------------------

struct start_times {
    double first_ms = -1;  // pool construction to the first worker running its first task
    double all_ms = -1;    // ... to the last of the N workers running its first task
};

/// Constructs a pool of `workers` started at once (lazy = false) and submits one holding task
/// per worker; each task reports when it started. Construction is timed, destruction is not.
inline start_times start_workers(unsigned workers, int hold_ms) {
    auto const t0 = clk::now();
    muster::process_pool pool({.max_workers = workers, .lazy = false});
    std::vector<muster::future<std::vector<std::int64_t>>> fs;
    for (unsigned i = 0; i < workers; ++i) fs.push_back(pool.submit<&proc_stamp_and_hold>(hold_ms));
    std::set<std::int64_t> pids;
    std::vector<double> ms;
    for (auto& f : fs) {
        auto const r = f.result();
        pids.insert(r[0]);
        ms.push_back(std::chrono::duration<double, std::milli>(clk::duration(r[1]) - t0.time_since_epoch()).count());
    }
    if (pids.size() != workers) return {};  // a worker ran two tasks: it started hold_ms late
    return {*std::min_element(ms.begin(), ms.end()), *std::max_element(ms.begin(), ms.end())};
}

/// The operating system's floor for P3: posix_spawn of this same program (`--list`, output to
/// /dev/null) until it has exited, with no process pool involved: exec, dynamic loading, static
/// initialisation and exit. The median of `rounds`, in ms; -1 if the spawn fails.
inline double exec_floor_ms(int rounds) {
    std::vector<double> ms;
    for (int i = 0; i < rounds; ++i) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        char arg0[] = "muster_bench", arg1[] = "--list";
        char* argv[] = {arg0, arg1, nullptr};
        auto const t0 = clk::now();
        pid_t pid = -1;
        int const rc = ::posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv, ::environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) return -1;
        int status = 0;
        ::waitpid(pid, &status, 0);
        ms.push_back(std::chrono::duration<double, std::milli>(clk::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

/// Where P3's large buffer escapes to, so that its pages are written for real.
inline char* volatile p3_escaped = nullptr;

/// Worker start time with a small parent, then with p3_parent_bytes allocated and touched in the
/// parent (the fork server is started with posix_spawn, which does not copy the parent's page
/// tables, and workers are forks of the server: the parent's size should not matter).
inline void proc_start_time(const params& p) {
    (void)start_workers(1, 1);  // untimed: the program's pages are in the page cache
    // The median of p3_rounds pools, for each parent size.
    auto median_of_rounds = [&] {
        std::vector<double> first, all;
        for (int i = 0; i < p.p3_rounds; ++i) {
            start_times const t = start_workers(p.p3_workers, p.p3_hold_ms);
            if (t.all_ms < 0) return start_times{};
            first.push_back(t.first_ms);
            all.push_back(t.all_ms);
        }
        std::sort(first.begin(), first.end());
        std::sort(all.begin(), all.end());
        return start_times{first[first.size() / 2], all[all.size() / 2]};
    };
    start_times const small = median_of_rounds();
    std::unique_ptr<char[]> big(new char[p.p3_parent_bytes]);
    std::memset(big.get(), 1, p.p3_parent_bytes);
    p3_escaped = big.get();  // the memset may not be optimised away
    std::int64_t const rss = resident_bytes();
    start_times const large = median_of_rounds();
    if (small.all_ms < 0 || large.all_ms < 0) {
        emit_status("P3", "check_failed", "a worker ran two tasks: it started more than the hold time late");
        return;
    }
    double const n = double(p.p3_workers);
    emit("P3", "ms_per_worker", small.all_ms / n, "ms");
    emit("P3", "ms_per_worker_1g", large.all_ms / n, "ms");
    emit("P3", "first_ms", small.first_ms, "ms");
    emit("P3", "first_ms_1g", large.first_ms, "ms");
    emit("P3", "all_ms", small.all_ms, "ms");
    emit("P3", "all_ms_1g", large.all_ms, "ms");
    emit("P3", "parent_rss_mib", double(rss) / double(1 << 20), "MiB");
    emit("P3", "exec_floor_ms", exec_floor_ms(2 * p.p3_rounds + 1), "ms");
    emit("P3", "workers", n, "workers");
    emit("P3", "rounds", double(p.p3_rounds), "pools per parent size");
}

/// Runs process-pool workload `w` (muster-proc); the thread-pool workloads are unsupported.
inline int run_process_workload(std::string_view w, const params& p) {
    return guarded_run(w, "muster-proc runs the process-pool workloads P1-P3 only", [&] {
        if (w == "P1") proc_round_trip(p);
        else if (w == "P2") proc_map_throughput(p);
        else if (w == "P3") proc_start_time(p);
        else return false;
        return true;
    });
}

}  // namespace muster_bench
