// bench/src/workloads.hpp: the thread-pool workloads W1-W10, written once as templates over a
// peer adapter (see peers.hpp), so every library runs exactly the same code. The process-pool
// workloads P1-P3 are in process_workloads.hpp.
//
// An adapter provides:
//
//   explicit Adapter(unsigned workers);   // a pool with `workers` worker threads
//   template <class F> auto submit(F&& f);  // a future: result() or get(), and wait_for()
//   template <class F> void post(F&& f);    // fire-and-forget
//   void wait_idle();                       // returns once every posted task has finished
//
// and optionally (detected with `requires`):
//
//   template <class C, class I> void fork_join(C&& child, I&& inl);   // W6: the library's own
//                                                                     // cooperative fork-join
//   template <class B> void parallel_chunks(std::size_t n, B&& body); // W4n: native loop, one
//                                                                     // scheduling unit per chunk
//   template <class Fn> void producer_scope(Fn&& fn);                 // where a producer loop runs
//   static constexpr bool multi_producer = false;      // W3 unsupported
//   static constexpr std::size_t task_cap = N;         // W1/W2/W3/W8 use at most N tasks
//   static constexpr std::size_t min_grain = G;        // W4 skips grains below G
//   static constexpr bool queues_tasks = false;        // W10 not meaningful (no queue)
//   static constexpr unsigned pool_threads_taking_posts(unsigned workers);  // W10 blockers
//
// Every workload prints its results through emit() / emit_status() (output.hpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <iterator>
#include <latch>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "output.hpp"

namespace muster_bench {

// ---- parameters --------------------------------------------------------------------------------

struct params {
    unsigned workers = 2;
    std::size_t warmup_tasks = 10'000;
    std::size_t n_w1 = 1'000'000;
    std::size_t n_w2 = 1'000'000;
    std::size_t n_w3_each = 500'000;  // two producers
    std::size_t w4_elems = std::size_t(1) << 24;
    int latency_samples = 2000;
    int fib_n = 25;
    int fib_cutoff = 12;
    int fib_warmup = 3;
    int fib_iters = 20;
    double deadlock_timeout_s = 5.0;
    double idle_s = 2.0;
    std::size_t n_w8 = 100'000;
    unsigned io_workers = 64;
    std::size_t io_tasks = 1000;
    double w9_seconds = 0.5;
    int w9_period_us = 100;
    int w9_task_ns = 1000;
    std::size_t w10_tasks = 1'000'000;
    // The process-pool workloads (process_workloads.hpp).
    int p1_round_trips = 2000;  // per client thread, after p1_warmup
    int p1_warmup = 200;
    std::size_t p2_tasks = 100'000;
    unsigned p3_workers = 4;
    std::size_t p3_parent_bytes = std::size_t(1) << 30;
    int p3_rounds = 5;  // pools started per parent size; the median is reported
    int p3_hold_ms = 100;

    /// Smaller sizes for a smoke run (--quick): same code paths, a few seconds per process.
    static params quick() {
        params p;
        p.warmup_tasks = 2000;
        p.n_w1 = p.n_w2 = 100'000;
        p.n_w3_each = 50'000;
        p.w4_elems = std::size_t(1) << 22;
        p.latency_samples = 300;
        p.fib_iters = 5;
        p.idle_s = 0.5;
        p.n_w8 = 20'000;
        p.w9_seconds = 0.2;
        p.w10_tasks = 200'000;
        p.p1_round_trips = 300;
        p.p1_warmup = 50;
        p.p2_tasks = 20'000;
        p.p3_rounds = 1;
        return p;
    }
};

inline constexpr std::size_t w4_grains[] = {16, 64, 256, 1024, 4096, 16384, 65536};

// ---- adapter traits ----------------------------------------------------------------------------

template <class A, class Fn>
void producer_scope(A& a, Fn&& fn) {
    if constexpr (requires { a.producer_scope(fn); })
        a.producer_scope(fn);
    else
        fn();
}

template <class A>
constexpr bool multi_producer() {
    if constexpr (requires { A::multi_producer; }) return A::multi_producer;
    else return true;
}

template <class A>
constexpr std::size_t capped(std::size_t n) {
    if constexpr (requires { A::task_cap; }) return std::min(n, A::task_cap);
    else return n;
}

template <class A>
constexpr std::size_t min_grain() {
    if constexpr (requires { A::min_grain; }) return A::min_grain;
    else return 1;
}

template <class A>
constexpr bool queues_tasks() {
    if constexpr (requires { A::queues_tasks; }) return A::queues_tasks;
    else return true;
}

template <class A>
constexpr unsigned pool_threads_taking_posts(unsigned workers) {
    if constexpr (requires { A::pool_threads_taking_posts(workers); })
        return A::pool_threads_taking_posts(workers);
    else
        return workers;
}

template <class A>
constexpr bool has_fork_join() {
    return requires(A a) { a.fork_join([] {}, [] {}); };
}

template <class A>
constexpr bool has_parallel_chunks() {
    return requires(A a) { a.parallel_chunks(std::size_t(1), [](std::size_t) {}); };
}

/// The value of a future: muster's result() or std::future's get().
template <class Fut>
decltype(auto) result_of(Fut& f) {
    if constexpr (requires { f.result(); }) return f.result();
    else return f.get();
}

template <class Fut>
bool ready_within(Fut& f, double seconds) {
    return f.wait_for(std::chrono::duration<double>(seconds)) == std::future_status::ready;
}

/// A stable counter increment the compiler cannot remove (the W2/W3/W8b task body).
using counter_t = std::atomic<std::uint64_t>;

// ---- W1 / W8a: submit with future --------------------------------------------------------------

template <class A>
void submit_with_future(const params& p, std::size_t n_requested, std::string_view wname) {
    std::size_t const n = capped<A>(n_requested);
    A pool(p.workers);
    using fut_t = decltype(pool.submit([] { return 0; }));
    {
        std::vector<fut_t> warm;
        warm.reserve(p.warmup_tasks);
        producer_scope(pool, [&] {
            for (std::size_t i = 0; i < p.warmup_tasks; ++i)
                warm.push_back(pool.submit([i] { return int(i); }));
        });
        for (auto& f : warm) (void)result_of(f);
    }
    std::vector<fut_t> futs;
    futs.reserve(n);
    std::size_t submitted = 0;
    auto const t0 = clk::now();
    try {
        producer_scope(pool, [&] {
            for (std::size_t i = 0; i < n; ++i) {
                int const v = int(i);
                futs.push_back(pool.submit([v] { return v * 2; }));
                ++submitted;
            }
        });
    } catch (const std::exception& e) {
        for (auto& f : futs) (void)result_of(f);
        emit_status(wname, "failed",
                    "exception after " + std::to_string(submitted) + " submissions: " + e.what());
        return;
    }
    std::int64_t sum = 0;
    for (auto& f : futs) sum += result_of(f);
    double const s = seconds_since(t0);
    if (sum != std::int64_t(n) * std::int64_t(n - 1)) {
        emit_status(wname, "check_failed", "sum of results is wrong");
        return;
    }
    emit(wname, "tasks_per_s", double(n) / s, "1/s");
    emit(wname, "ns_per_task", s * 1e9 / double(n), "ns");
    emit(wname, "n_tasks", double(n), "tasks");
}

// ---- W2 / W8b: fire-and-forget -----------------------------------------------------------------

template <class A>
void fire_and_forget(const params& p, std::size_t n_requested, std::string_view wname) {
    std::size_t const n = capped<A>(n_requested);
    A pool(p.workers);
    counter_t counter{0};
    auto task = [&counter] { counter.fetch_add(1, std::memory_order_relaxed); };
    producer_scope(pool, [&] {
        for (std::size_t i = 0; i < std::min(n, p.warmup_tasks); ++i) pool.post(task);
    });
    pool.wait_idle();
    counter.store(0);
    std::size_t posted = 0;
    auto const t0 = clk::now();
    try {
        producer_scope(pool, [&] {
            for (std::size_t i = 0; i < n; ++i) {
                pool.post(task);
                ++posted;
            }
        });
    } catch (const std::exception& e) {
        pool.wait_idle();
        emit_status(wname, "failed", "exception after " + std::to_string(posted) + " posts: " + e.what());
        return;
    }
    pool.wait_idle();
    double const s = seconds_since(t0);
    if (counter.load() != n) {
        emit_status(wname, "check_failed", "counter " + std::to_string(counter.load()) + " != " + std::to_string(n));
        return;
    }
    emit(wname, "tasks_per_s", double(n) / s, "1/s");
    emit(wname, "ns_per_task", s * 1e9 / double(n), "ns");
    emit(wname, "n_tasks", double(n), "tasks");
}

// ---- W3: two producers -------------------------------------------------------------------------

template <class A>
void two_producers(const params& p) {
    if constexpr (!multi_producer<A>()) {
        emit_status("W3", "unsupported", "posting from several outside threads at once is not supported");
    } else {
        std::size_t const each = capped<A>(2 * p.n_w3_each) / 2;
        A pool(p.workers);
        counter_t counter{0};
        auto task = [&counter] { counter.fetch_add(1, std::memory_order_relaxed); };
        for (std::size_t i = 0; i < std::min(each, p.warmup_tasks); ++i) pool.post(task);
        pool.wait_idle();
        counter.store(0);
        std::atomic<bool> go{false};
        std::atomic<int> failures{0};
        std::latch parked(2);
        std::vector<std::thread> producers;
        for (int t = 0; t < 2; ++t)
            producers.emplace_back([&] {
                parked.count_down();
                while (!go.load(std::memory_order_acquire)) {
                }
                try {
                    for (std::size_t i = 0; i < each; ++i) pool.post(task);
                } catch (...) {
                    failures.fetch_add(1);
                }
            });
        parked.wait();
        auto const t0 = clk::now();
        go.store(true, std::memory_order_release);
        for (auto& t : producers) t.join();
        pool.wait_idle();
        double const s = seconds_since(t0);
        if (failures.load() != 0) {
            emit_status("W3", "failed", "a producer's post threw");
            return;
        }
        if (counter.load() != 2 * each) {
            emit_status("W3", "check_failed", "counter mismatch");
            return;
        }
        emit("W3", "tasks_per_s", double(2 * each) / s, "1/s");
        emit("W3", "ns_per_task", s * 1e9 / double(2 * each), "ns");
        emit("W3", "n_tasks", double(2 * each), "tasks");
    }
}

// ---- W4 / W4n: granularity sweep ---------------------------------------------------------------

/// The unit of work of W4: not inlined, so the sequential baseline and every chunk run the same
/// machine code.
[[gnu::noinline]] inline double chunk_sum(const double* data, std::size_t b, std::size_t e) {
    double s = 0.0;
    for (std::size_t i = b; i < e; ++i) s += std::sqrt(data[i]);
    return s;
}

template <class A, bool Native>
void granularity_sweep(const params& p) {
    char const* const wname = Native ? "W4n" : "W4";
    if constexpr (Native && !has_parallel_chunks<A>()) {
        emit_status(wname, "unsupported", "no native parallel loop");
    } else {
        std::size_t const n = p.w4_elems;
        std::vector<double> data(n);
        for (std::size_t i = 0; i < n; ++i) data[i] = 1.0 + double(i) * 0.25;
        double ref = 0;
        std::vector<double> seq;
        for (int r = 0; r < 3; ++r) {
            auto const t0 = clk::now();
            ref = chunk_sum(data.data(), 0, n);
            seq.push_back(seconds_since(t0));
        }
        std::sort(seq.begin(), seq.end());
        double const tseq = seq[1];

        A pool(p.workers);
        std::vector<double> partial(n / w4_grains[0]);
        auto run = [&](std::size_t g) {
            std::size_t const chunks = n / g;
            const double* const dp = data.data();
            double* const pp = partial.data();
            auto const t0 = clk::now();
            if constexpr (Native) {
                pool.parallel_chunks(chunks, [dp, pp, g](std::size_t k) { pp[k] = chunk_sum(dp, k * g, (k + 1) * g); });
            } else {
                producer_scope(pool, [&] {
                    for (std::size_t k = 0; k < chunks; ++k)
                        pool.post([dp, pp, g, k] { pp[k] = chunk_sum(dp, k * g, (k + 1) * g); });
                });
                pool.wait_idle();
            }
            double total = 0;  // the reduction is part of the timed region
            for (std::size_t k = 0; k < chunks; ++k) total += pp[k];
            double const s = seconds_since(t0);
            if (std::fabs(total - ref) > 1e-9 * std::fabs(ref)) {
                emit_status(wname, "check_failed", "sum mismatch at G=" + std::to_string(g));
                std::exit(3);
            }
            return s;
        };
        run(4096);  // warm-up
        emit(wname, "tseq_ms", tseq * 1e3, "ms");
        emit(wname, "ns_per_elem", tseq * 1e9 / double(n), "ns");
        for (std::size_t g : w4_grains) {
            if (g < min_grain<A>()) continue;
            double const tpar = run(g);
            emit(wname, "eff_G" + std::to_string(g), tseq / (double(p.workers) * tpar), "ratio");
            emit(wname, "tpar_ms_G" + std::to_string(g), tpar * 1e3, "ms");
        }
        if (min_grain<A>() > w4_grains[0]) emit(wname, "min_grain", double(min_grain<A>()), "elements");
    }
}

// ---- W5: wake-up latency -----------------------------------------------------------------------

template <class A>
void wakeup_latency(const params& p) {
    A pool(p.workers);
    pool.post([] {});
    pool.wait_idle();
    int const n = p.latency_samples;
    std::vector<std::int64_t> submitted(n), started(n, -1);
    auto const t0 = clk::now();
    for (int i = 0; i < n; ++i) {
        std::this_thread::sleep_until(t0 + std::chrono::milliseconds(i + 1));
        std::int64_t* const slot = &started[i];
        submitted[i] = clk::now().time_since_epoch().count();
        pool.post([slot] { *slot = clk::now().time_since_epoch().count(); });
    }
    pool.wait_idle();
    std::vector<double> us(n);
    for (int i = 0; i < n; ++i)
        us[i] = std::chrono::duration<double, std::micro>(clk::duration(started[i] - submitted[i])).count();
    std::sort(us.begin(), us.end());
    auto rank = [&](double q) { return us[std::min<std::size_t>(n - 1, std::size_t(q * (n - 1) + 0.5))]; };
    emit("W5", "p50_us", rank(0.50), "us");
    emit("W5", "p90_us", rank(0.90), "us");
    emit("W5", "p99_us", rank(0.99), "us");
    emit("W5", "max_us", us.back(), "us");
}

// ---- W6: recursive fork-join -------------------------------------------------------------------

inline long fib_seq(int n) { return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2); }

template <class A>
long fib_task(A& pool, int n, int cutoff) {
    if (n <= cutoff) return fib_seq(n);
    long x = 0, y = 0;
    auto child = [&] { x = fib_task(pool, n - 1, cutoff); };
    auto inl = [&] { y = fib_task(pool, n - 2, cutoff); };
    if constexpr (has_fork_join<A>()) {
        pool.fork_join(child, inl);
    } else {
        // The plain pattern: submit the child, work, wait for the child inside a worker.
        auto f = pool.submit([&] {
            child();
            return 0;
        });
        inl();
        (void)result_of(f);
    }
    return x + y;
}

template <class A>
void fork_join(const params& p) {
    A pool(p.workers);
    long const expect = fib_seq(p.fib_n);
    auto once = [&] {
        auto f = pool.submit([&] { return fib_task(pool, p.fib_n, p.fib_cutoff); });
        if (!ready_within(f, p.deadlock_timeout_s)) {
            emit_status("W6", "deadlock",
                        std::string(has_fork_join<A>() ? "fork_join" : "submit + wait inside a task") +
                            " did not finish within " + std::to_string(int(p.deadlock_timeout_s)) + " s");
            std::_Exit(0);  // the workers are blocked for good: the pool cannot be destroyed
        }
        if (result_of(f) != expect) {
            emit_status("W6", "check_failed", "wrong fib result");
            std::exit(3);
        }
    };
    for (int i = 0; i < p.fib_warmup; ++i) once();
    std::vector<double> ts;
    for (int i = 0; i < p.fib_iters; ++i) {
        auto const t0 = clk::now();
        once();
        ts.push_back(seconds_since(t0));
    }
    std::sort(ts.begin(), ts.end());
    std::vector<double> seq;
    for (int i = 0; i < 5; ++i) {
        auto const t0 = clk::now();
        volatile long sink = fib_seq(p.fib_n);
        (void)sink;
        seq.push_back(seconds_since(t0));
    }
    std::sort(seq.begin(), seq.end());
    emit("W6", "ms_per_fib", ts[ts.size() / 2] * 1e3, "ms");
    emit("W6", "seq_ms", seq[2] * 1e3, "ms");
    emit("W6", "cooperative", has_fork_join<A>() ? 1.0 : 0.0, "1=library fork_join, 0=submit+wait");
}

// ---- W7: idle CPU ------------------------------------------------------------------------------

template <class A>
void idle_cost(const params& p) {
    A pool(p.workers);
    counter_t c{0};
    for (int i = 0; i < 100; ++i) pool.post([&c] { c.fetch_add(1, std::memory_order_relaxed); });
    pool.wait_idle();
    double const c0 = process_cpu_seconds();
    double const m0 = thread_cpu_seconds();
    auto const t0 = clk::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(p.idle_s));
    double const c1 = process_cpu_seconds();
    double const m1 = thread_cpu_seconds();
    double const wall = seconds_since(t0);
    double const cpu = (c1 - c0) - (m1 - m0);  // the sleeping main thread's own share is ~0
    emit("W7", "cpu_ms", cpu * 1e3, "ms");
    emit("W7", "cpu_pct_of_core", 100.0 * cpu / wall, "%");
}

// ---- W8io: I/O-bound tasks on 64 workers -------------------------------------------------------

template <class A>
void io_bound(const params& p) {
    A pool(p.io_workers);
    auto batch = [&] {
        counter_t c{0};
        producer_scope(pool, [&] {
            for (std::size_t i = 0; i < p.io_tasks; ++i)
                pool.post([&c] {
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    c.fetch_add(1, std::memory_order_relaxed);
                });
        });
        pool.wait_idle();
        return c.load();
    };
    batch();  // starts lazily created threads
    auto const t0 = clk::now();
    std::size_t const done = batch();
    double const s = seconds_since(t0);
    if (done != p.io_tasks) {
        emit_status("W8io", "check_failed", "count mismatch");
        return;
    }
    emit("W8io", "wall_ms", s * 1e3, "ms");
}

// ---- W9: CPU burnt at low load -----------------------------------------------------------------

template <class A>
void low_load(const params& p) {
    A pool(p.workers);
    counter_t warm{0};
    for (int i = 0; i < 100; ++i) pool.post([&warm] { warm.fetch_add(1, std::memory_order_relaxed); });
    pool.wait_idle();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));

    int const n = int(p.w9_seconds * 1e6 / p.w9_period_us);
    auto const task_len = std::chrono::nanoseconds(p.w9_task_ns);
    std::atomic<std::int64_t> useful_ns{0};
    auto task = [&useful_ns, task_len] {
        auto const b = clk::now();
        auto e = b;
        while (e - b < task_len) e = clk::now();
        useful_ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(e - b).count(),
                            std::memory_order_relaxed);
    };
    double const c0 = process_cpu_seconds();
    double const m0 = thread_cpu_seconds();
    auto const t0 = clk::now();
    for (int i = 0; i < n; ++i) {
        std::this_thread::sleep_until(t0 + std::chrono::microseconds(std::int64_t(i + 1) * p.w9_period_us));
        pool.post(task);
    }
    pool.wait_idle();
    double const c1 = process_cpu_seconds();
    double const m1 = thread_cpu_seconds();
    double const wall = seconds_since(t0);
    // CPU of everything but the producer thread, minus the tasks' own spinning.
    double const pool_cpu = (c1 - c0) - (m1 - m0);
    double const useful = double(useful_ns.load()) * 1e-9;
    double const overhead = pool_cpu - useful;
    emit("W9", "overhead_cpu_ms", overhead * 1e3, "ms");
    emit("W9", "overhead_pct_of_core", 100.0 * overhead / wall, "%");
    emit("W9", "pool_cpu_ms", pool_cpu * 1e3, "ms");
    emit("W9", "useful_ms", useful * 1e3, "ms");
    emit("W9", "producer_cpu_ms", (m1 - m0) * 1e3, "ms");
    emit("W9", "tasks", double(n), "tasks");
}

// ---- W10: memory per queued task ---------------------------------------------------------------

/// One W10 measurement, in a fresh child process (so that neither measurement reuses memory the
/// other freed). Occupies every pool thread that takes posted tasks with a task held on a latch,
/// queues n trivial tasks, and reports the growth of the resident set per task.
template <class A, bool WithFuture>
void queued_memory_child(const params& p) {
    std::size_t const n = p.w10_tasks;
    A pool(p.workers);
    {
        counter_t c{0};
        for (int i = 0; i < 1000; ++i) pool.post([&c] { c.fetch_add(1, std::memory_order_relaxed); });
        pool.wait_idle();
    }
    unsigned const blockers = pool_threads_taking_posts<A>(p.workers);
    std::latch release(1);
    std::atomic<unsigned> started{0};
    for (unsigned i = 0; i < blockers; ++i)
        pool.post([&] {
            started.fetch_add(1, std::memory_order_acq_rel);
            release.wait();
        });
    auto const limit = clk::now() + std::chrono::seconds(10);
    while (started.load(std::memory_order_acquire) < blockers) {
        if (clk::now() > limit) {
            emit_status("W10", "failed", "the pool's threads could not all be occupied");
            std::_Exit(0);
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    using fut_t = decltype(pool.submit([] { return 0; }));
    // Handles are stored in memory faulted in before the first reading, so only the pool's
    // (and the future's shared state's) memory counts.
    std::vector<fut_t> futs(WithFuture ? n : 0);
    std::int64_t const before = resident_bytes();
    producer_scope(pool, [&] {
        for (std::size_t i = 0; i < n; ++i) {
            if constexpr (WithFuture) futs[i] = pool.submit([] { return 0; });
            else pool.post([] {});
        }
    });
    std::int64_t const after = resident_bytes();
    release.count_down();
    pool.wait_idle();
    if constexpr (WithFuture)
        for (auto& f : futs) (void)result_of(f);
    emit("W10", WithFuture ? "bytes_per_submit" : "bytes_per_post", double(after - before) / double(n), "B");
}

template <class A>
void queued_memory(const params& p) {
    if constexpr (!queues_tasks<A>()) {
        emit_status("W10", "unsupported", "no task queue: every task gets a thread at once");
    } else {
        for (int mode = 0; mode < 2; ++mode) {
            std::fflush(stdout);
            pid_t const pid = fork();
            if (pid < 0) {
                emit_status("W10", "failed", "fork failed");
                return;
            }
            if (pid == 0) {
                try {
                    if (mode == 0) queued_memory_child<A, false>(p);
                    else queued_memory_child<A, true>(p);
                } catch (const std::exception& e) {
                    emit_status("W10", "failed", e.what());
                }
                std::fflush(stdout);
                std::_Exit(0);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                emit_status("W10", "failed", "measurement process ended abnormally");
        }
        emit("W10", "tasks", double(p.w10_tasks), "tasks");
    }
}

// ---- dispatch ----------------------------------------------------------------------------------

inline constexpr std::string_view all_workloads[] = {"W1", "W2", "W3", "W4", "W4n", "W5", "W6", "W7",
                                                     "W8a", "W8b", "W8io", "W9", "W10",
                                                     "P1", "P2", "P3"};

/// The process-pool workloads, run by the muster-proc peer (process_workloads.hpp).
inline bool is_process_workload(std::string_view w) { return w == "P1" || w == "P2" || w == "P3"; }

/// Whether `w` names a workload of this program (a thread-pool or a process-pool one).
inline bool is_known_workload(std::string_view w) {
    return is_process_workload(w) ||
           std::find(std::begin(all_workloads), std::end(all_workloads), w) != std::end(all_workloads);
}

/// Runs `body()`, which runs workload `w` and returns true, or returns false when its peer does
/// not run `w`: a known workload is then reported unsupported (`why`), an unknown one is an
/// error. An exception is reported as `failed`. Returns 0, or 2 for an unknown workload.
template <class Body>
int guarded_run(std::string_view w, const char* why, Body&& body) {
    try {
        if (body()) return 0;
        if (!is_known_workload(w)) {
            std::fprintf(stderr, "unknown workload %.*s\n", int(w.size()), w.data());
            return 2;
        }
        emit_status(w, "unsupported", why);
    } catch (const std::exception& e) {
        emit_status(w, "failed", std::string("exception: ") + e.what());
    }
    return 0;
}

/// Runs workload `w` for os_floor_peer (peers.hpp): W5 and W9 only, the workloads whose figures
/// the operating system bounds.
template <class A>
int run_floor_workload(std::string_view w, const params& p) {
    return guarded_run(w, "os-floor is a reference for W5 and W9, not a pool", [&] {
        if (w == "W5") wakeup_latency<A>(p);
        else if (w == "W9") low_load<A>(p);
        else return false;
        return true;
    });
}

/// Runs workload `w` for adapter A.
template <class A>
int run_workload(std::string_view w, const params& p) {
    return guarded_run(w, "process-pool workloads: muster-proc and the Python process pools", [&] {
        if (w == "W1") submit_with_future<A>(p, p.n_w1, "W1");
        else if (w == "W2") fire_and_forget<A>(p, p.n_w2, "W2");
        else if (w == "W3") two_producers<A>(p);
        else if (w == "W4") granularity_sweep<A, false>(p);
        else if (w == "W4n") granularity_sweep<A, true>(p);
        else if (w == "W5") wakeup_latency<A>(p);
        else if (w == "W6") fork_join<A>(p);
        else if (w == "W7") idle_cost<A>(p);
        else if (w == "W8a") submit_with_future<A>(p, p.n_w8, "W8a");
        else if (w == "W8b") fire_and_forget<A>(p, p.n_w8, "W8b");
        else if (w == "W8io") io_bound<A>(p);
        else if (w == "W9") low_load<A>(p);
        else if (w == "W10") queued_memory<A>(p);
        else return false;
        return true;
    });
}

}  // namespace muster_bench
