// muster::process_pool: results, exceptions, crashes, timeouts, shutdown, map.
#include <gtest/gtest.h>
#include <muster/process.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <latch>
#include <memory>
#include <ranges>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process_gate.hpp"
#include "tasks.hpp"

using namespace std::chrono_literals;
using namespace ptest;

namespace {

// No worker may outlive its pool: every test ends with the pool destroyed and no children.
class ProcessPool : public testing::Test {
protected:
    void TearDown() override { EXPECT_EQ(wait_children(0, 5s), 0u) << "worker processes left"; }
};

}  // namespace

TEST_F(ProcessPool, SubmitStandardAndUserTypes) {
    muster::process_pool pool({.max_workers = 2});
    auto a = pool.submit<&add>(2, 3);
    auto g = pool.submit<&greet>("world");
    auto d = pool.submit<&doubled>(std::vector<int>{1, 2, 3});
    auto p = pool.submit<&moved>(point{1, 2, "p"}, 10);
    auto n = pool.submit<&nothing>();
    EXPECT_EQ(a.result(), 5);
    EXPECT_EQ(g.result(), "hello, world");
    EXPECT_EQ(d.result(), (std::vector<int>{2, 4, 6}));
    EXPECT_EQ(p.result(), (point{11, 2, "p!"}));
    n.result();
    static_assert(std::is_same_v<decltype(n), muster::future<void>>);
}

TEST_F(ProcessPool, TaskRunsInAnotherProcess) {
    muster::process_pool pool({.max_workers = 1});
    int const pid = pool.submit<&my_pid>().result();
    EXPECT_NE(pid, static_cast<int>(::getpid()));
    EXPECT_EQ(pool.submit<&my_pid>().result(), pid);  // the idle worker is reused
}

TEST_F(ProcessPool, ExceptionComesBackAsRemoteError) {
    muster::process_pool pool({.max_workers = 1});
    auto f = pool.submit<&fail_with>("bad input");
    try {
        f.result();
        FAIL() << "no exception";
    } catch (const muster::remote_error& e) {
        EXPECT_EQ(e.type_name(), "std::invalid_argument");
        EXPECT_EQ(e.message(), "bad input");
    }
    EXPECT_EQ(pool.submit<&add>(1, 1).result(), 2);  // the pool goes on
}

// The future is a temporary, dropped while the exception unwinds: the handler then reads an
// exception whose task block the supervisor may free at the same moment (the exception object
// itself stays alive through the C++ runtime's reference count). Under ThreadSanitizer this is
// the case that must not be reported as a race.
TEST_F(ProcessPool, HandlerReadsRemoteErrorAfterItsFutureIsGone) {
    muster::process_pool pool({.max_workers = 2});
    std::string const long_message(200, 'x');  // heap-allocated in the exception's strings
    for (int i = 0; i < 50; ++i) {
        try {
            (void)pool.submit<&fail_with>(long_message).result();
            FAIL() << "no exception";
        } catch (const muster::remote_error& e) {
            EXPECT_EQ(e.message(), long_message);
            EXPECT_EQ(e.type_name(), "std::invalid_argument");
        }
    }
}

TEST_F(ProcessPool, CrashFailsOnlyThatTask) {
    muster::process_pool pool({.max_workers = 2});
    std::vector<muster::future<int>> ok;
    for (int i = 0; i < 10; ++i) ok.push_back(pool.submit<&square>(i));
    auto segv = pool.submit<&crash>(0);
    auto abrt = pool.submit<&crash>(1);
    auto ex3 = pool.submit<&crash>(2);
    for (int i = 10; i < 20; ++i) ok.push_back(pool.submit<&square>(i));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(ok[static_cast<std::size_t>(i)].result(), i * i);
    try {
        segv.result();
        FAIL();
    } catch (const muster::worker_lost_error& e) {
        EXPECT_TRUE(segv_reported(e.signal(), e.exit_status())) << e.what();
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
        EXPECT_NE(std::string(e.what()).find("SIGSEGV"), std::string::npos) << e.what();
#endif
    }
    try {
        abrt.result();
        FAIL();
    } catch (const muster::worker_lost_error& e) {
        EXPECT_EQ(e.signal(), SIGABRT) << e.what();
    }
    try {
        ex3.result();
        FAIL();
    } catch (const muster::worker_lost_error& e) {
        EXPECT_EQ(e.exit_status(), 3) << e.what();
        EXPECT_NE(std::string(e.what()).find("exited with status 3"), std::string::npos);
    }
    EXPECT_EQ(pool.submit<&add>(40, 2).result(), 42);
}

TEST_F(ProcessPool, TimeoutKillsOnlyThatWorker) {
    muster::process_pool pool({.max_workers = 2, .kill_grace = 100ms});
    auto hang = pool.submit_with<&crash>({.timeout = 200ms}, 4);
    auto ok = pool.submit<&add>(1, 2);
    EXPECT_THROW(hang.result(), muster::timeout_error);
    EXPECT_EQ(ok.result(), 3);
    EXPECT_EQ(pool.submit<&add>(2, 2).result(), 4);
}

TEST_F(ProcessPool, PoolWideTimeout) {
    muster::process_pool pool({.max_workers = 1, .task_timeout = 200ms, .kill_grace = 100ms});
    EXPECT_THROW(pool.submit<&sleep_ms>(5000).result(), muster::timeout_error);
    EXPECT_EQ(pool.submit<&sleep_ms>(1).result(), 1);
}

// F7/R6: cancel() on a running process task succeeds: the future is cancelled at once, its
// callbacks run on the cancelling thread, and the worker running it is killed and replaced.
TEST_F(ProcessPool, CancelKillsRunningTask) {
    muster::process_pool pool({.max_workers = 1, .kill_grace = 100ms});
    int const old_pid = pool.submit<&my_pid>().result();
    auto f = pool.submit<&sleep_ms>(60000);
    while (!f.running()) std::this_thread::sleep_for(1ms);
    std::thread::id callback_thread;
    f.add_done_callback([&](const muster::future<int>&) {
        callback_thread = std::this_thread::get_id();
    });
    EXPECT_TRUE(f.cancel());
    EXPECT_EQ(callback_thread, std::this_thread::get_id());
    EXPECT_TRUE(f.done());
    EXPECT_TRUE(f.cancelled());
    EXPECT_FALSE(f.running());
    EXPECT_TRUE(f.cancel());  // cancelling again reports the same outcome
    EXPECT_THROW(f.result(), muster::cancelled_error);
    // The next task runs in a replacement: the old worker was killed, not left sleeping.
    EXPECT_NE(pool.submit<&my_pid>().result(), old_pid);
}

TEST_F(ProcessPool, RequestStopCancelsRunningTask) {
    muster::process_pool pool({.max_workers = 1, .kill_grace = 100ms});
    auto f = pool.submit<&sleep_ms>(60000);
    while (!f.running()) std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(f.request_stop());
    EXPECT_TRUE(f.cancelled());
    EXPECT_THROW(f.result(), muster::cancelled_error);
    EXPECT_EQ(pool.submit<&add>(1, 2).result(), 3);
}

TEST_F(ProcessPool, CancelAfterFinishFails) {
    muster::process_pool pool({.max_workers = 1});
    auto f = pool.submit<&add>(1, 2);
    f.wait();
    EXPECT_FALSE(f.cancel());
    EXPECT_FALSE(f.cancelled());
    EXPECT_EQ(f.result(), 3);
}

// F7: cancel() races with the arriving result; exactly one wins. A future either holds the
// value or is cancelled; a result that lost is destroyed (AddressSanitizer's leak check sees a
// heap string that was not).
TEST_F(ProcessPool, CancelRacingWithCompletionIsConsistent) {
    muster::process_pool pool({.max_workers = 2, .kill_grace = 100ms});
    std::string const name(64, 'n');
    int won = 0, lost = 0;
    for (int i = 0; i < 100; ++i) {
        auto f = pool.submit<&greet>(name);
        while (!f.running() && !f.done()) std::this_thread::yield();
        bool const cancelled = f.cancel();
        EXPECT_TRUE(f.done());
        EXPECT_EQ(f.cancelled(), cancelled);
        if (cancelled) {
            ++won;
            EXPECT_THROW(f.result(), muster::cancelled_error);
        } else {
            ++lost;
            EXPECT_EQ(f.result(), "hello, " + name);
        }
    }
    EXPECT_EQ(won + lost, 100);
    EXPECT_EQ(pool.submit<&add>(2, 2).result(), 4);
}

// Clean-ups documented as "cancel what has not started" (completion_queue::cancel_pending, a
// dropped map range) leave a running process task alone, unlike future::cancel().
TEST_F(ProcessPool, CancelPendingLeavesRunningTaskAlone) {
    muster::process_pool pool({.max_workers = 1});
    muster::completion_queue<int, int> cq;
    auto running = pool.submit<&sleep_ms>(200);
    cq.add(0, running);
    cq.add(1, pool.submit<&add>(1, 2));
    while (!running.running()) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(cq.cancel_pending(), 1u);
    EXPECT_EQ(running.result(), 200);
}

TEST_F(ProcessPool, PendingTaskCanBeCancelled) {
    muster::process_pool pool({.max_workers = 1});
    auto busy = pool.submit<&sleep_ms>(300);
    auto later = pool.submit<&add>(1, 2);
    EXPECT_TRUE(later.cancel());
    EXPECT_TRUE(later.cancelled());
    EXPECT_EQ(busy.result(), 300);
}

TEST_F(ProcessPool, KillWorkerFromOutsideWhileBusy) {
    muster::process_pool pool({.max_workers = 1});
    int const pid = pool.submit<&my_pid>().result();
    auto f = pool.submit<&sleep_ms>(10000);
    while (!f.running()) std::this_thread::sleep_for(1ms);
    ::kill(pid, SIGKILL);
    try {
        f.result();
        FAIL();
    } catch (const muster::worker_lost_error& e) {
        EXPECT_EQ(e.signal(), SIGKILL);
    }
    EXPECT_NE(pool.submit<&my_pid>().result(), pid);
}

TEST_F(ProcessPool, KillWorkerFromOutsideWhileIdle) {
    muster::process_pool pool({.max_workers = 1});
    int const pid = pool.submit<&my_pid>().result();
    ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(50ms);
    int const again = pool.submit<&my_pid>().result();
    EXPECT_NE(again, pid);
}

// Both start methods: workers killed from outside, timeouts and recycling behave the same, and
// workers are where each method puts them (children of one fork server, or of this process).
class ProcessPoolStart : public testing::TestWithParam<muster::process_start> {
protected:
    void TearDown() override { EXPECT_EQ(wait_children(0, 5s), 0u) << "processes left"; }
    bool forked() const { return GetParam() == muster::process_start::fork_server; }
};

TEST_P(ProcessPoolStart, WorkersAreChildrenOfTheServerOrOfThisProcess) {
    muster::process_pool pool({.max_workers = 2, .start_method = GetParam()});
    muster_test::process_gate gate;
    auto a = pool.submit<&muster_test::gated_task>(gate.dir(), false);
    auto b = pool.submit<&muster_test::gated_task>(gate.dir(), false);
    std::vector<int> const pids = gate.wait_started(2);
    ASSERT_EQ(pids.size(), 2u);
    pid_t const p0 = muster_test::parent_pid(pids[0]), p1 = muster_test::parent_pid(pids[1]);
    if (forked()) {
        EXPECT_EQ(p0, p1);  // one server forks every worker
        EXPECT_EQ(muster_test::parent_pid(p0), ::getpid());
        EXPECT_EQ(child_count(), 1u);
    } else {
        EXPECT_EQ(p0, ::getpid());
        EXPECT_EQ(p1, ::getpid());
        EXPECT_EQ(child_count(), 2u);
    }
    EXPECT_EQ(worker_count(), 2u);
    gate.release();
    a.result();
    b.result();
}

TEST_P(ProcessPoolStart, KilledWorkersAreReplaced) {
    muster::process_pool pool({.max_workers = 1, .start_method = GetParam()});
    int const idle = pool.submit<&my_pid>().result();
    ASSERT_EQ(::kill(idle, SIGKILL), 0);
    // Once the process is reaped (by the pool, or by the fork server when the pool released
    // it), the pool knows it is gone and does not hand it the next task.
    while (muster_test::parent_pid(idle) != -1) std::this_thread::sleep_for(1ms);
    muster_test::process_gate gate;
    auto f = pool.submit<&muster_test::gated_task>(gate.dir(), true);
    std::vector<int> const busy = gate.wait_started(1);
    ASSERT_EQ(busy.size(), 1u);
    EXPECT_NE(busy[0], idle);
    ASSERT_EQ(::kill(busy[0], SIGKILL), 0);
    try {
        f.result();
        FAIL() << "the task of a killed worker returned";
    } catch (const muster::worker_lost_error& e) {
        EXPECT_EQ(e.signal(), SIGKILL) << e.what();
        EXPECT_NE(std::string(e.what()).find("SIGKILL"), std::string::npos) << e.what();
    }
    int const after = pool.submit<&my_pid>().result();
    EXPECT_NE(after, busy[0]);
}

TEST_P(ProcessPoolStart, TimeoutAndRecyclingReplaceWorkers) {
    muster::process_pool pool({.max_workers = 1, .max_tasks_per_child = 2,
                               .kill_grace = 50ms, .start_method = GetParam()});
    std::set<int> pids;
    for (int i = 0; i < 6; ++i) pids.insert(pool.submit<&my_pid>().result());
    EXPECT_EQ(pids.size(), 3u);
    EXPECT_THROW(pool.submit_with<&sleep_ms>({.timeout = 50ms}, 10000).result(),
                 muster::timeout_error);
    EXPECT_EQ(pool.submit<&add>(1, 2).result(), 3);
}

TEST_P(ProcessPoolStart, TerminateKillsBusyWorkers) {
    muster::process_pool pool({.max_workers = 2, .start_method = GetParam()});
    auto a = pool.submit<&sleep_ms>(10000);
    auto b = pool.submit<&sleep_ms>(10000);
    while (!a.running() || !b.running()) std::this_thread::sleep_for(1ms);
    pool.terminate();
    EXPECT_THROW(a.result(), muster::worker_lost_error);
    EXPECT_THROW(b.result(), muster::worker_lost_error);
    EXPECT_EQ(child_count(), 0u);  // terminate() waits for the workers (and the server)
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ProcessPoolStart,
                         testing::Values(muster::process_start::fork_server,
                                         muster::process_start::spawn),
                         testing::PrintToStringParamName());

// The fork server killed from outside: its workers die with it (PR_SET_PDEATHSIG), a running
// task fails with worker_lost_error saying so, and the pool starts a new server and goes on.
TEST_F(ProcessPool, KilledForkServerIsReplaced) {
    muster::process_pool pool({.max_workers = 2});
    int const first = pool.submit<&my_pid>().result();
    pid_t const server = muster_test::parent_pid(first);
    ASSERT_GT(server, 0);
    ASSERT_EQ(muster_test::parent_pid(server), ::getpid());
    auto f = pool.submit<&sleep_ms>(10000);
    while (!f.running()) std::this_thread::sleep_for(1ms);
    ASSERT_EQ(::kill(server, SIGKILL), 0);
    try {
        f.result();
        FAIL() << "the task outlived its fork server";
    } catch (const muster::worker_lost_error& e) {
        EXPECT_NE(std::string(e.what()).find("fork server"), std::string::npos) << e.what();
    }
    int const after = pool.submit<&my_pid>().result();
    EXPECT_NE(after, first);
    pid_t const new_server = muster_test::parent_pid(after);
    EXPECT_NE(new_server, server);
    EXPECT_EQ(muster_test::parent_pid(new_server), ::getpid());
    EXPECT_EQ(pool.submit<&add>(2, 2).result(), 4);
}

TEST_F(ProcessPool, MalformedFramesFailOnlyThatTask) {
    muster::process_pool pool({.max_workers = 2});
    auto big = pool.submit<&write_garbage>(0);
    auto bad = pool.submit<&write_garbage>(1);
    auto ok = pool.submit<&add>(1, 2);
    EXPECT_THROW(big.result(), muster::worker_lost_error);
    EXPECT_THROW(bad.result(), muster::worker_lost_error);
    EXPECT_EQ(ok.result(), 3);
    EXPECT_EQ(pool.submit<&add>(2, 2).result(), 4);
}

TEST_F(ProcessPool, MaxTasksPerChildReplacesWorker) {
    muster::process_pool pool({.max_workers = 1, .max_tasks_per_child = 2});
    std::vector<int> pids;
    for (int i = 0; i < 6; ++i) pids.push_back(pool.submit<&my_pid>().result());
    EXPECT_EQ(pids[0], pids[1]);
    EXPECT_NE(pids[1], pids[2]);
    EXPECT_EQ(pids[2], pids[3]);
    EXPECT_NE(pids[3], pids[4]);
    // A backlog larger than the pool still completes (Python gh-115634).
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(pool.submit<&square>(i));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(), i * i);
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
TEST_F(ProcessPool, MemoryLimitFailsTheAllocation) {
    muster::process_pool pool({.max_workers = 1, .memory_limit = std::size_t{1} << 30});
    try {
        pool.submit<&crash>(3).result();
        FAIL();
    } catch (const muster::remote_error& e) {
        EXPECT_EQ(e.type_name(), "std::bad_alloc") << e.what();
    }
    EXPECT_EQ(pool.submit<&add>(1, 2).result(), 3);
}
#endif

TEST_F(ProcessPool, InitializerFailureBreaksPool) {
    muster::process_pool pool(
        {.max_workers = 2, .initializer = muster::remote_function::of<&failing_initializer>()});
    auto f = pool.submit<&add>(1, 2);
    try {
        f.result();
        FAIL();
    } catch (const muster::broken_pool& e) {
        EXPECT_NE(std::string(e.what()).find("no database"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)pool.submit<&add>(1, 2), muster::broken_pool);
}

TEST_F(ProcessPool, SubmitAfterShutdownThrows) {
    muster::process_pool pool({.max_workers = 1});
    EXPECT_EQ(pool.submit<&add>(1, 2).result(), 3);
    pool.shutdown();
    EXPECT_THROW((void)pool.submit<&add>(1, 2), muster::shutdown_error);
    pool.shutdown();  // idempotent
}

TEST_F(ProcessPool, ShutdownWaitsAndCancelsPending) {
    muster::process_pool pool({.max_workers = 1});
    auto running = pool.submit<&sleep_ms>(200);
    while (!running.running()) std::this_thread::sleep_for(1ms);
    std::vector<muster::future<int>> queued;
    for (int i = 0; i < 5; ++i) queued.push_back(pool.submit<&square>(i));
    pool.shutdown({.wait = true, .cancel_pending = true});
    EXPECT_EQ(running.result(), 200);
    for (auto& f : queued) EXPECT_TRUE(f.cancelled());
    EXPECT_EQ(child_count(), 0u);
}

TEST_F(ProcessPool, ShutdownWithoutWaitStillRunsQueued) {
    std::vector<muster::future<int>> fs;
    {
        muster::process_pool pool({.max_workers = 2});
        for (int i = 0; i < 10; ++i) fs.push_back(pool.submit<&square>(i));
        pool.shutdown({.wait = false});
    }
    for (int i = 0; i < 10; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(), i * i);
}

TEST_F(ProcessPool, TerminateKillsWorkers) {
    muster::process_pool pool({.max_workers = 2});
    auto a = pool.submit<&sleep_ms>(10000);
    auto b = pool.submit<&sleep_ms>(10000);
    auto c = pool.submit<&sleep_ms>(10000);
    while (!a.running() || !b.running()) std::this_thread::sleep_for(1ms);
    auto const t0 = std::chrono::steady_clock::now();
    pool.terminate();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_THROW(a.result(), muster::worker_lost_error);
    EXPECT_THROW(b.result(), muster::worker_lost_error);
    EXPECT_TRUE(c.cancelled());
    EXPECT_EQ(child_count(), 0u);
    EXPECT_THROW((void)pool.submit<&add>(1, 2), muster::shutdown_error);
}

TEST_F(ProcessPool, PostReportsErrorsToHandler) {
    std::atomic<int> reported{0};
    {
        muster::process_pool pool(
            {.max_workers = 1, .on_unhandled_exception = [&](std::exception_ptr) { ++reported; }});
        pool.post<&fail_with>("x");
        pool.post<&add>(1, 2);
    }
    EXPECT_EQ(reported.load(), 1);
}

TEST_F(ProcessPool, MapKeepsOrderWithChunks) {
    muster::process_pool pool({.max_workers = 2});
    for (std::size_t chunk : {1u, 3u, 8u}) {
        std::vector<int> out;
        for (int v : pool.map<&slow_square>(std::views::iota(0, 40), {.chunksize = chunk}))
            out.push_back(v);
        ASSERT_EQ(out.size(), 40u);
        for (int i = 0; i < 40; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i * i);
    }
}

TEST_F(ProcessPool, MapElementErrorsKeepPositions) {
    muster::process_pool pool({.max_workers = 2});
    auto r = pool.map<&square_or_throw>(std::views::iota(0, 20), {.chunksize = 4});
    int i = 0, errors = 0;
    for (auto it = r.begin(); it != r.end(); ++it, ++i) {
        if (i % 7 == 3) {
            EXPECT_THROW(*it, muster::remote_error);
            ++errors;
        } else {
            EXPECT_EQ(*it, i * i);
        }
    }
    EXPECT_EQ(i, 20);
    EXPECT_EQ(errors, 3);
}

TEST_F(ProcessPool, MapUnordered) {
    muster::process_pool pool({.max_workers = 2});
    std::multiset<int> got;
    for (int v : pool.map_unordered<&square>(std::views::iota(0, 30), {.chunksize = 4})) got.insert(v);
    std::multiset<int> want;
    for (int i = 0; i < 30; ++i) want.insert(i * i);
    EXPECT_EQ(got, want);
}

namespace {

// The lengths of the runs of equal pids in `out`. With max_tasks_per_child = 1 every chunk (one
// task) runs in a worker process of its own, so these are the sizes of the chunks map sent.
std::vector<std::size_t> pid_runs(const std::vector<point>& out) {
    std::vector<std::size_t> runs;
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (i == 0 || out[i].y != out[i - 1].y) runs.push_back(0);
        ++runs.back();
    }
    return runs;
}

std::vector<point> map_tagged(muster::process_pool& pool, auto&& input,
                              muster::process_map_options options = {}) {
    std::vector<point> out;
    for (point p : pool.map<&tagged>(input, options)) out.push_back(p);
    return out;
}

}  // namespace

TEST_F(ProcessPool, MapChunksizeIsAutomaticForSizedInput) {
    // ceil(n / (4 * max_workers)): 1001 inputs on 2 workers are chunks of 126, the last 119.
    muster::process_pool pool({.max_workers = 2, .max_tasks_per_child = 1});
    auto out = map_tagged(pool, std::views::iota(0, 1001));
    ASSERT_EQ(out.size(), 1001u);
    for (int i = 0; i < 1001; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)].x, i);
    std::vector<std::size_t> want(7, 126);
    want.push_back(119);
    EXPECT_EQ(pid_runs(out), want);
    // Few inputs: one per chunk.
    EXPECT_EQ(pid_runs(map_tagged(pool, std::vector<int>{1, 2, 3, 4, 5})),
              (std::vector<std::size_t>{1, 1, 1, 1, 1}));
}

TEST_F(ProcessPool, MapAutomaticChunksizeIsCapped) {
    // 5000 inputs on 1 worker would be chunks of 1250; the cap is 1024.
    muster::process_pool pool({.max_workers = 1, .max_tasks_per_child = 1});
    std::vector<int> in(5000);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int>(i);
    auto out = map_tagged(pool, in);
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].x, in[i]);
    EXPECT_EQ(pid_runs(out), (std::vector<std::size_t>{1024, 1024, 1024, 1024, 904}));
}

TEST_F(ProcessPool, MapChunksGrowForUnsizedInputAndReadBoundedAhead) {
    // An infinite input: chunks of 1, 2, 4, ... 64, and the input is read at most buffersize
    // chunks (of at most 64) beyond the chunk being consumed.
    std::size_t pulled = 0;
    auto counted = std::views::iota(0) | std::views::transform([&pulled](int i) {
                       ++pulled;
                       return i;
                   });
    static_assert(!std::ranges::sized_range<decltype(counted)>);
    muster::process_pool pool({.max_workers = 2, .max_tasks_per_child = 1});
    std::vector<std::size_t> const want{1, 2, 4, 8, 16, 32, 64, 64, 64};
    std::size_t total = 0;
    for (std::size_t c : want) total += c;
    std::vector<point> out;
    std::size_t most_ahead = 0;
    for (point p : pool.map<&tagged>(counted, {.buffersize = 2})) {
        out.push_back(p);
        most_ahead = std::max(most_ahead, pulled - out.size());
        if (out.size() == total) break;
    }
    ASSERT_EQ(out.size(), total);
    for (std::size_t i = 0; i < total; ++i) EXPECT_EQ(out[i].x, static_cast<int>(i));
    EXPECT_EQ(pid_runs(out), want);
    EXPECT_LE(most_ahead, 2 * 64 + 63);
    EXPECT_LE(pulled, total + 2 * 64);
}

TEST_F(ProcessPool, MapUnorderedAutomaticChunksKeepTheirOrder) {
    // 200 inputs on 2 workers: chunks of 25, in completion order, each in input order.
    muster::process_pool pool({.max_workers = 2, .max_tasks_per_child = 1});
    std::vector<point> out;
    for (point p : pool.map_unordered<&tagged>(std::views::iota(0, 200))) out.push_back(p);
    ASSERT_EQ(out.size(), 200u);
    EXPECT_EQ(pid_runs(out), std::vector<std::size_t>(8, 25));
    std::vector<bool> seen(200);
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto const x = static_cast<std::size_t>(out[i].x);
        ASSERT_LT(x, 200u);
        EXPECT_FALSE(seen[x]);
        seen[x] = true;
        if (i % 25 == 0) EXPECT_EQ(x % 25, 0u) << "a chunk starts at input " << x;
        else EXPECT_EQ(out[i].x, out[i - 1].x + 1);
    }
}

TEST_F(ProcessPool, MapExplicitChunksizeIsKept) {
    muster::process_pool pool({.max_workers = 2, .max_tasks_per_child = 1});
    EXPECT_EQ(pid_runs(map_tagged(pool, std::views::iota(0, 30), {.chunksize = 7})),
              (std::vector<std::size_t>{7, 7, 7, 7, 2}));
    EXPECT_THROW((void)pool.map<&tagged>(std::views::iota(0, 3), {.chunksize = 0}),
                 muster::invalid_argument);
    EXPECT_THROW((void)pool.map_unordered<&tagged>(std::views::iota(0, 3), {.chunksize = 0}),
                 muster::invalid_argument);
}

TEST_F(ProcessPool, MapSplitsChunksAboveTheFrameLimit) {
    // Chunks of 10 inputs of 1000 bytes do not fit 4096-byte frames: they are sent in parts,
    // and only the input too large on its own fails, at its position.
    muster::process_pool pool({.max_workers = 1, .max_frame_size = 4096});
    std::vector<std::string> in(40, std::string(1000, 'a'));
    in[17] = std::string(5000, 'b');
    auto r = pool.map<&size_of>(in);
    int i = 0;
    for (auto it = r.begin(); it != r.end(); ++it, ++i) {
        if (i == 17) EXPECT_THROW(*it, muster::serialization_error);
        else EXPECT_EQ(*it, 1000) << i;
    }
    EXPECT_EQ(i, 40);

    int errors = 0, ok = 0;
    auto u = pool.map_unordered<&size_of>(in);
    for (auto it = u.begin(); it != u.end(); ++it) {
        try {
            EXPECT_EQ(*it, 1000);
            ++ok;
        } catch (const muster::serialization_error&) {
            ++errors;
        }
    }
    EXPECT_EQ(ok, 39);
    EXPECT_EQ(errors, 1);
}

TEST_F(ProcessPool, MapTimeout) {
    muster::process_pool pool({.max_workers = 1});
    std::vector<int> in{1, 2000, 2000, 2000};
    auto r = pool.map<&sleep_ms>(in, {.timeout = 300ms});
    auto it = r.begin();
    EXPECT_EQ(*it, 1);
    // Advancing waits for the next chunk, so the deadline surfaces from ++ (or from *).
    EXPECT_THROW(
        {
            ++it;
            (void)*it;
        },
        muster::timeout_error);
    EXPECT_TRUE(r.exhausted() || (++it, r.exhausted()));
}

TEST_F(ProcessPool, WaitAsCompletedCompletionQueue) {
    muster::process_pool pool({.max_workers = 2});
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < 12; ++i) fs.push_back(pool.submit<&square>(i));
    auto r = muster::wait(fs);
    EXPECT_EQ(r.done.size(), 12u);
    int n = 0;
    for (auto& f : muster::as_completed(fs)) {
        (void)f.result();
        ++n;
    }
    EXPECT_EQ(n, 12);
    muster::completion_queue<int, int> cq;
    for (int i = 0; i < 5; ++i) cq.add(i, pool.submit<&square>(i));
    int sum = 0;
    for (int i = 0; i < 5; ++i) sum += cq.pop().future.result();
    EXPECT_EQ(sum, 0 + 1 + 4 + 9 + 16);
    auto slow = pool.submit<&sleep_ms>(2000);
    auto fast = pool.submit<&sleep_ms>(1);
    auto first = muster::wait({slow, fast}, muster::return_when::first_completed);
    EXPECT_EQ(first.done.size(), 1u);
    slow.request_stop();
}

TEST_F(ProcessPool, DoneCallbacksRunInParent) {
    muster::process_pool pool({.max_workers = 1});
    std::atomic<int> seen{0};
    auto f = pool.submit<&add>(20, 22);
    f.add_done_callback([&](const muster::future<int>& g) { seen = g.result(); });
    f.wait();
    for (int i = 0; i < 1000 && seen == 0; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(seen.load(), 42);
}

TEST_F(ProcessPool, OversizedArgumentFailsOnlyThatFuture) {
    muster::process_pool pool({.max_workers = 1, .max_frame_size = 1024});
    auto f = pool.submit<&doubled>(std::vector<int>(10000, 1));
    EXPECT_THROW(f.result(), muster::serialization_error);
    EXPECT_EQ(pool.submit<&add>(1, 2).result(), 3);
}

TEST_F(ProcessPool, InvalidOptions) {
    EXPECT_THROW(muster::process_pool({.max_workers = 0}), muster::invalid_argument);
    EXPECT_THROW(muster::process_pool({.max_workers = 1, .min_workers = 2}), muster::invalid_argument);
}

TEST_F(ProcessPool, EagerStartAndMinWorkers) {
    muster::process_pool pool({.max_workers = 2, .lazy = false});
    // Nothing is submitted: only an eager start brings the workers up (a broken one hangs
    // here until the test's CTest timeout).
    while (worker_count() < 2) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(worker_count(), 2u);
    EXPECT_EQ(pool.submit<&add>(1, 2).result(), 3);
}

// The last owner of a pool may let go of it inside a done-callback, which runs on the pool's
// supervisor thread: the supervisor must not go on using a destroyed pool, and the workers
// still exit.
TEST_F(ProcessPool, PoolDestroyedInsideItsOwnDoneCallback) {
    auto pool = std::make_unique<muster::process_pool>(muster::process_pool_options{.max_workers = 1});
    std::latch destroyed(1);
    auto f = pool->submit<&add>(2, 3);
    f.add_done_callback([&](const muster::future<int>&) {
        pool.reset();
        destroyed.count_down();
    });
    destroyed.wait();
    EXPECT_EQ(f.result(), 5);
}
