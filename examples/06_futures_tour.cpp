// 06: a tour of the concurrent.futures API, in muster.
//
// Each section does one thing a Python user knows (the Python spelling is in the section
// title) and checks the outcome. Instead of sleeping and hoping, the tasks wait at gates
// (std::latch) that the main thread opens, so every run prints the same thing.

#include <muster/muster.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

int failures = 0;

void section(const char* title) { std::printf("\n%s\n", title); }

void expect(bool ok, const std::string& what) {
    std::printf("  %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
}

// A one-shot gate: a task waits in pass() until the main thread calls open().
class gate {
public:
    void open() { latch_.count_down(); }
    void pass() { latch_.wait(); }

private:
    std::latch latch_{1};
};

// Blocks until stop is requested on `st`, without spinning.
void wait_for_stop(const std::stop_token& st) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait(lock, st, [] { return false; });
}

void submit_done_result(muster::thread_pool& pool) {
    section("1. submit, done(), result()          (ex.submit(fn, 20, 22); f.done(); f.result())");
    gate g;
    auto f = pool.submit([&g](int a, int b) { g.pass(); return a + b; }, 20, 22);
    expect(!f.done(), "done() is false while the task waits");
    g.open();
    expect(f.result() == 42, "result() waits for the task and returns 42");
    expect(f.done() && !f.cancelled(), "done() is true afterwards");
}

void result_with_timeout(muster::thread_pool& pool) {
    section("2. result(timeout)                   (f.result(timeout=0.05) raises TimeoutError)");
    gate g;
    auto f = pool.submit([&g] { g.pass(); return 7; });
    bool timed_out = false;
    try {
        (void)f.result(50ms);
    } catch (const muster::timeout_error&) {
        timed_out = true;
    }
    expect(timed_out, "result(50ms) throws muster::timeout_error");
    expect(!f.done() && !f.cancelled(), "the task itself is not affected by the timeout");
    g.open();
    expect(f.result() == 7, "once released it finishes normally: 7");
}

void exceptions(muster::thread_pool& pool) {
    section("3. exceptions                        (f.result() re-raises; f.exception())");
    auto f = pool.submit([]() -> int { throw std::out_of_range("index 7 is out of range"); });
    std::string caught;
    try {
        (void)f.result();
    } catch (const std::out_of_range& e) {
        caught = e.what();
    }
    expect(caught == "index 7 is out of range",
           "result() rethrows the task's own std::out_of_range, not a wrapper: \"" + caught + "\"");
    expect(f.exception() != nullptr, "exception() returns it as an exception_ptr instead");
}

void cancel_queued_task() {
    section("4. cancel()                          (f.cancel() on a task still in the queue)");
    muster::thread_pool one({.max_workers = 1});
    gate hold;
    std::latch started{1};
    auto blocker = one.submit([&] { started.count_down(); hold.pass(); return 1; });
    auto queued = one.submit([] { return 2; });
    started.wait();  // the only worker is busy now, so `queued` cannot have started
    expect(queued.cancel(), "cancel() of the queued task returns true");
    expect(queued.done() && queued.cancelled(), "it is done and cancelled at once");
    bool cancelled_error = false;
    try {
        (void)queued.result();
    } catch (const muster::cancelled_error&) {
        cancelled_error = true;
    }
    expect(cancelled_error, "its result() throws muster::cancelled_error");
    expect(blocker.running() && !blocker.cancel(), "cancel() of the running task returns false");
    hold.open();
    expect(blocker.result() == 1, "the running task finishes normally");
}

void done_callbacks(muster::thread_pool& pool) {
    section("5. add_done_callback                 (f.add_done_callback(fn))");
    gate g;
    auto f = pool.submit([&g] { g.pass(); return std::string("payload"); });
    std::latch called{1};
    std::string seen;
    std::thread::id ran_on;
    f.add_done_callback([&](const muster::future<std::string>& done) {
        seen = done.result();  // the future is done: result() does not block
        ran_on = std::this_thread::get_id();
        called.count_down();
    });
    g.open();
    called.wait();
    expect(seen == "payload" && ran_on != std::this_thread::get_id(),
           "the callback saw \"payload\", on the worker that completed the task");
    bool inline_call = false;
    auto const caller = std::this_thread::get_id();
    f.add_done_callback([&](const muster::future<std::string>&) {
        inline_call = std::this_thread::get_id() == caller;
    });
    expect(inline_call, "a callback added to a done future runs at once, on the caller's thread");
}

void as_completed_order(muster::thread_pool& pool) {
    section("6. as_completed                      (for f in as_completed(fs))");
    std::vector<gate> gates(3);
    std::vector<muster::future<char>> fs;
    for (int i = 0; i < 3; ++i)
        fs.push_back(pool.submit([&gates, i] {
            gates[i].pass();
            return static_cast<char>('a' + i);
        }));
    // Release c first; each time a future comes out, release the next one: c, a, b.
    int const release_order[] = {2, 0, 1};
    gates[release_order[0]].open();
    std::string got;
    int step = 0;
    for (auto& f : muster::as_completed(fs)) {
        got += f.result();
        if (++step < 3) gates[release_order[step]].open();
    }
    expect(got == "cab", "submitted a, b, c; as_completed yielded " + got + " (completion order)");
}

void map_versus_map_unordered(muster::thread_pool& pool) {
    section("7. map vs map_unordered              (ex.map(fn, xs); Pool.imap_unordered(fn, xs))");
    std::vector<int> const xs{0, 1, 2, 3};

    // map: element 3 is released first and each task then releases the one before it, so the
    // tasks finish 3, 2, 1, 0; map still yields the results in input order.
    std::vector<gate> gates(4);
    std::mutex log_mutex;
    std::string finish_log;
    auto square = [&](int x) {
        gates[x].pass();
        {
            std::lock_guard lock(log_mutex);
            finish_log += (finish_log.empty() ? "" : " ") + std::to_string(x);
        }
        if (x > 0) gates[x - 1].open();
        return x * x;
    };
    gates[3].open();
    std::string mapped;
    for (int v : pool.map(square, xs)) mapped += (mapped.empty() ? "" : " ") + std::to_string(v);
    expect(mapped == "0 1 4 9",
           "map yielded " + mapped + " (input order); the tasks finished " + finish_log);

    // map_unordered: the consumer releases 3 first and then, after each result, the next
    // lower element, so the completion order is 3, 2, 1, 0 and that is the order yielded.
    std::vector<gate> gates2(4);
    auto square2 = [&gates2](int x) { gates2[x].pass(); return x * x; };
    gates2[3].open();
    std::string unordered;
    int next = 2;
    for (int v : pool.map_unordered(square2, xs)) {
        unordered += (unordered.empty() ? "" : " ") + std::to_string(v);
        if (next >= 0) gates2[next--].open();
    }
    expect(unordered == "9 4 1 0", "map_unordered yielded " + unordered + " (completion order)");
}

void wait_first_completed(muster::thread_pool& pool) {
    section("8. wait                              (wait(fs, timeout, return_when=...))");
    gate ga, gb;
    auto a = pool.submit([&ga] { ga.pass(); return 'a'; });
    auto b = pool.submit([&gb] { gb.pass(); return 'b'; });
    auto r1 = muster::wait({a, b}, muster::return_when::all_completed, 20ms);
    expect(r1.done.empty() && r1.not_done.size() == 2,
           "with a 20 ms timeout and nothing done: 0 done, 2 not done, no exception");
    gb.open();
    auto r2 = muster::wait({a, b}, muster::return_when::first_completed);
    expect(r2.done.size() == 1 && r2.done[0].result() == 'b' && r2.not_done.size() == 1,
           "first_completed returns as soon as b is done: done = {b}, not_done = {a}");
    ga.open();
    auto r3 = muster::wait({a, b});  // all_completed is the default
    expect(r3.done.size() == 2, "all_completed (the default) returns when both are done");
}

void stop_running_task(muster::thread_pool& pool) {
    section("9. stopping a running task           (no Python equivalent: a std::stop_token)");
    std::latch started{1};
    // A callable whose first parameter is a std::stop_token receives one.
    auto f = pool.submit([&started](std::stop_token st) {
        started.count_down();
        wait_for_stop(st);
        return std::string("stopped on request");
    });
    started.wait();
    expect(f.running() && !f.cancel(), "the task is running, so cancel() cannot stop it");
    expect(f.request_stop(), "request_stop() asks it to stop through its stop_token");
    expect(f.result() == "stopped on request", "it returns: \"" + f.result() + "\"");
}

void shutdown_cancelling_pending() {
    section("10. shutdown(cancel_pending)         (ex.shutdown(cancel_futures=True))");
    muster::thread_pool one({.max_workers = 1});
    gate hold;
    std::latch started{1};
    auto running = one.submit([&] { started.count_down(); hold.pass(); return 0; });
    std::vector<muster::future<int>> queued;
    for (int i = 1; i <= 3; ++i) queued.push_back(one.submit([i] { return i; }));
    started.wait();
    one.shutdown({.wait = false, .cancel_pending = true});
    bool all_cancelled = true;
    for (auto& f : queued) all_cancelled = all_cancelled && f.cancelled();
    expect(all_cancelled, "the 3 queued tasks are cancelled");
    bool refused = false;
    try {
        (void)one.submit([] { return 9; });
    } catch (const muster::shutdown_error&) {
        refused = true;
    }
    expect(refused, "submit() after shutdown throws muster::shutdown_error");
    hold.open();
    one.shutdown();  // idempotent; this one waits for the running task
    expect(running.done() && running.result() == 0, "the running task was allowed to finish");
}

void terminate_pool() {
    section("11. terminate()                      (shutdown(cancel_futures=True) + stop running)");
    muster::thread_pool one({.max_workers = 1});
    std::latch started{1};
    auto running = one.submit([&started](std::stop_token st) {
        started.count_down();
        wait_for_stop(st);
        return std::string("stopped by terminate()");
    });
    auto queued = one.submit([] { return std::string("never runs"); });
    started.wait();
    one.terminate();  // returns once the running task has ended
    expect(running.done() && running.result() == "stopped by terminate()",
           "the running task saw its stop_token and returned: \"" + running.result() + "\"");
    expect(queued.cancelled(), "the queued task was cancelled");
}

}  // namespace

int main() {
    {
        // `with ThreadPoolExecutor(max_workers=4) as ex:` -> a scope: the destructor shuts the
        // pool down and waits for its tasks.
        muster::thread_pool pool({.max_workers = 4});
        submit_done_result(pool);
        result_with_timeout(pool);
        exceptions(pool);
        cancel_queued_task();
        done_callbacks(pool);
        as_completed_order(pool);
        map_versus_map_unordered(pool);
        wait_first_completed(pool);
        stop_running_task(pool);
        shutdown_cancelling_pending();
        terminate_pool();
    }
    std::printf("\n%s\n", failures == 0 ? "check: every step behaved as described"
                                        : "check FAILED: see the FAIL lines above");
    return failures == 0 ? 0 : 1;
}
