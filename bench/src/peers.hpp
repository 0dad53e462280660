// bench/src/peers.hpp: the adapters, one per library and usage style, over which the workloads
// in workloads.hpp are instantiated. Each is the plainest idiomatic use of its library; where a
// library has no "wait until idle", an outstanding-task counter stands in (one extra atomic
// read-modify-write per task, noted in the report).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <muster/parallel_for.hpp>
#include <muster/thread_pool.hpp>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

namespace muster_bench {

/// Tasks posted and not yet finished, for libraries without a native wait-until-idle.
class outstanding_counter {
public:
    void add() noexcept {
        // relaxed: the task that will call done() is published by the library's own queue.
        n_.fetch_add(1, std::memory_order_relaxed);
    }
    void done() noexcept {
        // acq_rel: the waiter that sees 0 must see the task's effects (release), and the last
        // task must see every earlier decrement before it notifies (acquire).
        if (n_.fetch_sub(1, std::memory_order_acq_rel) == 1) n_.notify_all();
    }
    void wait() noexcept {
        for (long v = n_.load(std::memory_order_acquire); v != 0; v = n_.load(std::memory_order_acquire))
            n_.wait(v, std::memory_order_acquire);
    }

private:
    std::atomic<long> n_{0};
};

// ---- muster ------------------------------------------------------------------------------------

/// muster::thread_pool with P workers. W6 uses the plain pattern (submit the child, result() on
/// it inside a worker): muster's waits run other tasks, so it needs no special API.
/// W4n uses muster::parallel_for with grain 1 over chunk indices: one claim per chunk.
struct muster_peer {
    muster::thread_pool pool;
    explicit muster_peer(unsigned workers) : pool({.max_workers = workers}) {}
    template <class F>
    auto submit(F&& f) {
        return pool.submit(std::forward<F>(f));
    }
    template <class F>
    void post(F&& f) {
        pool.post(std::forward<F>(f));
    }
    void wait_idle() { pool.wait_idle(); }
    template <class B>
    void parallel_chunks(std::size_t chunks, B&& body) {
        muster::parallel_for(pool, std::size_t{0}, chunks, body, {.grain = 1});
    }
};

// ---- std::async / std::thread ------------------------------------------------------------------

/// No pool: std::async(launch::async) per submit, a detached std::thread per post. Thread-per-task
/// rows are slow, so batches are capped (task_cap) and W4 starts at G = 1024.
struct std_async_peer {
    static constexpr std::size_t task_cap = 100'000;
    static constexpr std::size_t min_grain = 1024;
    static constexpr bool queues_tasks = false;
    outstanding_counter pending;
    explicit std_async_peer(unsigned) {}
    ~std_async_peer() { pending.wait(); }
    template <class F>
    auto submit(F&& f) {
        return std::async(std::launch::async, std::forward<F>(f));
    }
    template <class F>
    void post(F&& f) {
        pending.add();
        try {
            std::thread([this, g = std::forward<F>(f)]() mutable {
                g();
                pending.done();
            }).detach();
        } catch (...) {
            pending.done();
            throw;
        }
    }
    void wait_idle() { pending.wait(); }
};

// ---- oneTBB ------------------------------------------------------------------------------------

/// oneTBB as a classic pool: task_arena with P slots, none reserved for outside threads, so P TBB
/// workers run the tasks and the producer stays outside. post = enqueue, submit = enqueue + a
/// std::promise. W6 uses a tbb::task_group inside the task (TBB's cooperative wait).
struct tbb_arena_peer {
    tbb::global_control limit;
    tbb::task_arena arena;
    outstanding_counter pending;
    explicit tbb_arena_peer(unsigned workers)
        : limit(tbb::global_control::max_allowed_parallelism, workers + 1), arena(int(workers), 0) {
        arena.initialize();
    }
    ~tbb_arena_peer() { pending.wait(); }
    template <class F>
    auto submit(F&& f) {
        using R = std::invoke_result_t<std::decay_t<F>>;
        auto promise = std::make_shared<std::promise<R>>();
        auto fut = promise->get_future();
        arena.enqueue([promise, g = std::forward<F>(f)] { promise->set_value(g()); });
        return fut;
    }
    template <class F>
    void post(F&& f) {
        pending.add();
        arena.enqueue([this, g = std::forward<F>(f)] {
            g();
            pending.done();
        });
    }
    void wait_idle() { pending.wait(); }
    template <class C, class I>
    void fork_join(C&& child, I&& inl) {
        tbb::task_group tg;
        tg.run(std::forward<C>(child));
        inl();
        tg.wait();
    }
};

/// oneTBB the idiomatic way: task_arena(P) with one slot for the calling thread (P-1 TBB workers
/// plus the caller, which runs tasks while it waits) and a tbb::task_group. post = run,
/// wait_idle = wait. W4n = tbb::parallel_for over blocked_range(0, chunks, 1) with the
/// simple_partitioner: one range per chunk.
struct tbb_taskgroup_peer {
    static constexpr bool multi_producer = false;
    static constexpr unsigned pool_threads_taking_posts(unsigned workers) { return workers - 1; }
    tbb::global_control limit;
    tbb::task_arena arena;
    tbb::task_group tg;
    explicit tbb_taskgroup_peer(unsigned workers)
        : limit(tbb::global_control::max_allowed_parallelism, workers), arena(int(workers), 1) {
        arena.initialize();
    }
    ~tbb_taskgroup_peer() { wait_idle(); }
    static bool inside() {
        return tbb::this_task_arena::current_thread_index() != tbb::task_arena::not_initialized;
    }
    template <class Fn>
    void producer_scope(Fn&& fn) {
        arena.execute([&] { fn(); });
    }
    template <class F>
    auto submit(F&& f) {
        using R = std::invoke_result_t<std::decay_t<F>>;
        auto promise = std::make_shared<std::promise<R>>();
        auto fut = promise->get_future();
        auto body = [promise, g = std::forward<F>(f)] { promise->set_value(g()); };
        if (inside()) tg.run(std::move(body));
        else arena.execute([&] { tg.run(std::move(body)); });
        return fut;
    }
    template <class F>
    void post(F&& f) {
        if (inside()) tg.run(std::forward<F>(f));
        else arena.execute([&] { tg.run(std::forward<F>(f)); });
    }
    void wait_idle() {
        arena.execute([&] { tg.wait(); });
    }
    template <class C, class I>
    void fork_join(C&& child, I&& inl) {
        tbb::task_group g;
        g.run(std::forward<C>(child));
        inl();
        g.wait();
    }
    template <class B>
    void parallel_chunks(std::size_t chunks, B&& body) {
        arena.execute([&] {
            tbb::parallel_for(
                tbb::blocked_range<std::size_t>(0, chunks, 1),
                [&](const tbb::blocked_range<std::size_t>& r) {
                    for (std::size_t k = r.begin(); k != r.end(); ++k) body(k);
                },
                tbb::simple_partitioner());
        });
    }
};

// ---- Boost.Asio --------------------------------------------------------------------------------

/// boost::asio::thread_pool(P). post = boost::asio::post; submit = post with use_future (a
/// std::future). Asio only offers join(), so wait_idle uses an outstanding counter. W6 uses the
/// plain submit + get inside a worker, which blocks the worker.
struct asio_peer {
    boost::asio::thread_pool pool;
    outstanding_counter pending;
    explicit asio_peer(unsigned workers) : pool(workers) {}
    ~asio_peer() {
        pending.wait();
        pool.join();
    }
    template <class F>
    auto submit(F&& f) {
        return boost::asio::post(pool, boost::asio::use_future(std::forward<F>(f)));
    }
    template <class F>
    void post(F&& f) {
        pending.add();
        boost::asio::post(pool, [this, g = std::forward<F>(f)]() mutable {
            g();
            pending.done();
        });
    }
    void wait_idle() { pending.wait(); }
};

// ---- the operating system's floor (W5, W9) -----------------------------------------------------

/// Not a pool: the least any pool has to do to run a task on a thread that sleeps. One thread
/// blocks in futex(FUTEX_WAIT); post stores the callable, sets the word and calls
/// futex(FUTEX_WAKE): one system call on each side, no queue, no lock. Its W5 latencies and W9
/// CPU are what this machine's kernel and hypervisor cost for a sleep and a wake; a pool cannot
/// beat them, so they show how much of a pool's figures is the operating system's.
/// One task at a time: post waits (yielding) until the previous one was taken.
struct os_floor_peer {
    std::atomic<std::uint32_t> word{0};  // 0 idle, 1 a task is ready, 2 stop
    std::function<void()> task;          // written by post while idle; read by the thread after 1
    std::thread thread;

    explicit os_floor_peer(unsigned) : thread([this] { loop(); }) {}
    ~os_floor_peer() {
        wait_idle();
        set(2);
        thread.join();
    }
    template <class F>
    void post(F&& f) {
        wait_idle();
        task = std::forward<F>(f);
        set(1);
    }
    void wait_idle() {
        // acquire: pairs with the thread's release store of 0, so the task's effects are visible.
        while (word.load(std::memory_order_acquire) == 1) std::this_thread::yield();
    }

private:
    void set(std::uint32_t v) {
        // release: the thread that sees v also sees the callable stored before.
        word.store(v, std::memory_order_release);
        syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
                nullptr, 0);
    }
    void loop() {
        for (;;) {
            std::uint32_t v;
            while ((v = word.load(std::memory_order_acquire)) == 0)
                syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, 0,
                        nullptr, nullptr, 0);
            if (v == 2) return;
            task();
            task = nullptr;
            word.store(0, std::memory_order_release);
        }
    }
};

}  // namespace muster_bench
