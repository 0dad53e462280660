// The executor contract: one typed suite that every muster executor must pass (submit/result,
// exceptions, cancellation, wait, as_completed, map, shutdown). Reference items are named above
// each test.
//
// The suite talks to an executor only through a traits class, so that an executor with another
// submission form (a process pool runs registered functions, not lambdas, and needs its own way
// to hold its workers) joins with one more traits class in the Executors list below:
//
//   struct traits {
//       using executor = ...;                        // the executor type
//       using task_error = ...;                      // what result() throws for fail()
//       static constexpr const char* name = "...";   // the instantiation's name
//       static std::unique_ptr<executor> make();
//       static muster::future<int> square(executor&, int x);   // a task returning x * x
//       static muster::future<int> fail(executor&, int code);  // a task that throws; what()
//                                                              // contains "contract failure
//                                                              <code>"
//       static std::vector<int> map_square(executor&, const std::vector<int>&);  // executor's map
//       class hold {  // occupies every worker: tasks submitted while it lives stay pending
//       public:
//           explicit hold(executor&);  // returns once every worker is held
//           muster::future<int> held(std::size_t i);  // the task holding worker i (running)
//           void release();            // idempotent; the destructor releases and waits
//       };
//       // Whether cancel() on a running task stops it (a process pool kills the worker) or
//       // returns false (a thread pool cannot stop a thread's callable; request_stop asks it).
//       static constexpr bool cancel_stops_running = ...;
//   };
//
// Every case runs on every executor: the thread pool and the process pool differ only in how a
// task is written and how a worker is held, which the traits hide. The process pool's workers
// re-execute this program, so its main (tests/process/main.cpp) calls muster::init first.
#include <gtest/gtest.h>

#include <algorithm>
#include <cereal/types/string.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <muster/process.hpp>
#include <string>
#include <vector>

#include "futures_support.hpp"
#include "process_gate.hpp"

namespace {

using namespace std::chrono_literals;

/// Holds `Workers` workers of an executor with tasks from `Gate`, which provides
/// `Gate(std::size_t n)`, `muster::future<int> submit(executor&)` (a task that holds one worker
/// until release()), `wait_started(n)` and `release()`.
template <class Executor, class Gate, std::size_t Workers>
class worker_hold {
public:
    explicit worker_hold(Executor& ex) : gate_(Workers) {
        for (std::size_t i = 0; i < Workers; ++i) held_.push_back(gate_.submit(ex));
        gate_.wait_started(Workers);
    }
    worker_hold(const worker_hold&) = delete;
    worker_hold& operator=(const worker_hold&) = delete;
    ~worker_hold() {
        release();
        for (auto& f : held_) f.wait();  // the gate must outlive the tasks that use it
    }
    void release() { gate_.release(); }
    muster::future<int> held(std::size_t i) const { return held_.at(i); }

private:
    Gate gate_;
    std::vector<muster::future<int>> held_;
};

// ---- muster::thread_pool -----------------------------------------------------------------------

/// A thread-pool worker is held by a task waiting on a latch.
class thread_gate {
public:
    explicit thread_gate(std::size_t n) : blocker_(static_cast<std::ptrdiff_t>(n)) {}
    muster::future<int> submit(muster::thread_pool& ex) { return ex.submit(blocker_.task()); }
    void wait_started(std::size_t) { blocker_.wait_started(); }
    void release() { blocker_.release(); }

private:
    muster_test::blocker blocker_;
};

/// thread_pool with `Workers` workers; `Capacity` > 0 bounds the queue (overflow_policy::block).
template <std::size_t Workers, std::size_t Capacity>
struct thread_pool_traits {
    using executor = muster::thread_pool;
    using task_error = muster_test::test_error;
    static constexpr bool cancel_stops_running = false;

    static std::unique_ptr<executor> make() {
        muster::thread_pool_options options;
        options.max_workers = Workers;
        options.queue_capacity = Capacity;
        options.overflow = muster::overflow_policy::block;
        return std::make_unique<executor>(std::move(options));
    }
    static muster::future<int> square(executor& ex, int x) {
        return ex.submit([x] { return x * x; });
    }
    static muster::future<int> fail(executor& ex, int code) {
        return ex.submit([code]() -> int {
            throw muster_test::test_error("contract failure " + std::to_string(code), code);
        });
    }
    static std::vector<int> map_square(executor& ex, const std::vector<int>& input) {
        std::vector<int> out;
        for (int v : ex.map([](int x) { return x * x; }, input)) out.push_back(v);
        return out;
    }

    using hold = worker_hold<executor, thread_gate, Workers>;
};

struct thread_pool_2 : thread_pool_traits<2, 0> {
    static constexpr const char* name = "thread_pool_2_workers";
};
struct thread_pool_1_bounded : thread_pool_traits<1, 64> {
    static constexpr const char* name = "thread_pool_1_worker_queue_64";
};

// ---- muster::process_pool ----------------------------------------------------------------------

// Task functions of the process pool: registered in every process of this program by the
// submit<&fn> calls below.
int square_task(int x) { return x * x; }
int fail_task(int code) {
    throw muster_test::test_error("contract failure " + std::to_string(code), code);
}

/// A process-pool worker is held by a task blocked on a FIFO of a process_gate.
class process_gate_holder {
public:
    explicit process_gate_holder(std::size_t) {}
    muster::future<int> submit(muster::process_pool& ex) {
        return ex.submit<&muster_test::gated_task>(gate_.dir(), false);
    }
    void wait_started(std::size_t n) { (void)gate_.wait_started(n); }
    void release() { gate_.release(); }

private:
    muster_test::process_gate gate_;
};

/// process_pool with `Workers` workers, each replaced after `MaxTasksPerChild` tasks (0: never),
/// started by `Start`. A task's exception reaches the parent as remote_error, whose what() is
/// the remote type name and the remote what().
template <std::size_t Workers, std::size_t MaxTasksPerChild, muster::process_start Start>
struct process_pool_traits {
    using executor = muster::process_pool;
    using task_error = muster::remote_error;
    static constexpr bool cancel_stops_running = true;

    static std::unique_ptr<executor> make() {
        return std::make_unique<executor>(muster::process_pool_options{
            .max_workers = Workers, .max_tasks_per_child = MaxTasksPerChild, .start_method = Start});
    }
    static muster::future<int> square(executor& ex, int x) { return ex.submit<&square_task>(x); }
    static muster::future<int> fail(executor& ex, int code) { return ex.submit<&fail_task>(code); }
    static std::vector<int> map_square(executor& ex, const std::vector<int>& input) {
        std::vector<int> out;
        for (int v : ex.map<&square_task>(input)) out.push_back(v);
        return out;
    }

    using hold = worker_hold<executor, process_gate_holder, Workers>;
};

struct process_pool_2 : process_pool_traits<2, 0, muster::process_start::fork_server> {
    static constexpr const char* name = "process_pool_2_workers";
};
struct process_pool_1_recycled : process_pool_traits<1, 3, muster::process_start::spawn> {
    static constexpr const char* name = "process_pool_1_spawned_worker_3_tasks_per_child";
};

// ---- the suite ---------------------------------------------------------------------------------

using Executors = ::testing::Types<thread_pool_2, thread_pool_1_bounded, process_pool_2,
                                   process_pool_1_recycled>;

struct executor_names {
    template <class T>
    static std::string GetName(int) {
        return T::name;
    }
};

template <class Traits>
class ExecutorContract : public ::testing::Test {
protected:
    using executor = typename Traits::executor;
    std::unique_ptr<executor> ex_ = Traits::make();
};

TYPED_TEST_SUITE(ExecutorContract, Executors, executor_names);

// items 14, 62: submit returns a future of the task's result
TYPED_TEST(ExecutorContract, SubmitReturnsTheResult) {
    auto& ex = *this->ex_;
    EXPECT_EQ(TypeParam::square(ex, 7).result(), 49);
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < 100; ++i) fs.push_back(TypeParam::square(ex, i));
    for (int i = 0; i < 100; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(), i * i);
}

// items 15, 21: a task's exception reaches its future, and the executor keeps working
TYPED_TEST(ExecutorContract, TaskExceptionReachesTheFuture) {
    auto& ex = *this->ex_;
    auto f = TypeParam::fail(ex, 3);
    try {
        (void)f.result();
        FAIL() << "result() returned";
    } catch (const typename TypeParam::task_error& e) {
        EXPECT_NE(std::string(e.what()).find("contract failure 3"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.cancelled());
    EXPECT_TRUE(f.exception());
    EXPECT_EQ(TypeParam::square(ex, 5).result(), 25);
}

// items 3, 16, 69: a pending task can be cancelled; it never runs and shutdown does not wait for
// it
TYPED_TEST(ExecutorContract, CancelPendingTask) {
    auto& ex = *this->ex_;
    muster::future<int> f;
    {
        typename TypeParam::hold h(ex);
        f = TypeParam::square(ex, 2);
        EXPECT_FALSE(f.done());
        EXPECT_TRUE(f.cancel());
        EXPECT_TRUE(f.cancelled());
        EXPECT_TRUE(f.done());
        EXPECT_THROW((void)f.result(), muster::cancelled_error);
    }
    EXPECT_EQ(TypeParam::square(ex, 4).result(), 16);
    ex.shutdown();
    EXPECT_TRUE(f.cancelled());
}

// item 3 (and futures.md F7): cancel() on a running task. Python returns False; a thread pool
// does too (its callable cannot be stopped from outside: request_stop asks it), while a process
// pool stops the task by killing its worker. Either way the answer is final and consistent.
TYPED_TEST(ExecutorContract, CancelRunningTask) {
    auto& ex = *this->ex_;
    {
        typename TypeParam::hold h(ex);
        auto running = h.held(0);
        EXPECT_TRUE(running.running());
        bool const cancelled = running.cancel();
        EXPECT_EQ(cancelled, TypeParam::cancel_stops_running);
        EXPECT_EQ(running.cancelled(), cancelled);
        EXPECT_EQ(running.done(), cancelled);  // a cancelled future is done at once
        if (cancelled) {
            EXPECT_THROW((void)running.result(), muster::cancelled_error);
        }
        h.release();
        if (!cancelled) {
            EXPECT_NO_THROW((void)running.result());
        }
    }
    EXPECT_EQ(TypeParam::square(ex, 5).result(), 25);  // the executor goes on
}

// item 4: a finished task cannot be cancelled
TYPED_TEST(ExecutorContract, CancelFinishedTaskReturnsFalse) {
    auto& ex = *this->ex_;
    auto f = TypeParam::square(ex, 3);
    EXPECT_EQ(f.result(), 9);
    EXPECT_FALSE(f.cancel());
    EXPECT_EQ(f.result(), 9);
}

// items 37, 38: wait(all_completed) returns every distinct future done
TYPED_TEST(ExecutorContract, WaitAllCompleted) {
    auto& ex = *this->ex_;
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(TypeParam::square(ex, i));
    fs.push_back(fs.front());
    auto r = muster::wait(fs);
    EXPECT_EQ(r.done.size(), 20u);
    EXPECT_TRUE(r.not_done.empty());
}

// items 41, 42: wait(first_exception) returns once a task failed
TYPED_TEST(ExecutorContract, WaitFirstException) {
    auto& ex = *this->ex_;
    auto bad = TypeParam::fail(ex, 1);
    auto r = muster::wait(std::vector<muster::future<int>>{TypeParam::square(ex, 1), bad},
                          muster::return_when::first_exception);
    bool found = false;
    for (auto const& f : r.done) found = found || f.exception() != nullptr;
    EXPECT_TRUE(found);
}

// item 44, W1 (deliberate deviation from item 47): wait with a timeout returns normally with
// pending tasks in not_done; a cancelled task is done
TYPED_TEST(ExecutorContract, WaitTimeoutAndCancelled) {
    auto& ex = *this->ex_;
    typename TypeParam::hold h(ex);
    auto p = TypeParam::square(ex, 2);
    auto c = TypeParam::square(ex, 3);
    ASSERT_TRUE(c.cancel());
    auto r = muster::wait(std::vector<muster::future<int>>{p, c},
                          muster::return_when::all_completed, 20ms);
    ASSERT_EQ(r.done.size(), 1u);
    EXPECT_TRUE(r.done[0].cancelled());
    ASSERT_EQ(r.not_done.size(), 1u);
    EXPECT_FALSE(r.not_done[0].done());
    h.release();
    EXPECT_EQ(p.result(), 4);
}

// items 28, 30: as_completed yields each distinct future once
TYPED_TEST(ExecutorContract, AsCompletedYieldsEachFutureOnce) {
    auto& ex = *this->ex_;
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(TypeParam::square(ex, i));
    fs.push_back(fs[3]);
    std::vector<int> seen;
    for (auto& f : muster::as_completed(fs)) seen.push_back(f.result());
    std::sort(seen.begin(), seen.end());
    ASSERT_EQ(seen.size(), 20u);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], i * i);
}

// items 32, 33: as_completed times out over held tasks, after yielding the done ones
TYPED_TEST(ExecutorContract, AsCompletedTimeout) {
    auto& ex = *this->ex_;
    auto done = TypeParam::square(ex, 5);
    done.wait();
    typename TypeParam::hold h(ex);
    auto p = TypeParam::square(ex, 6);
    std::vector<int> seen;
    std::string message;
    try {
        for (auto& f : muster::as_completed(std::vector<muster::future<int>>{p, done}, 20ms))
            seen.push_back(f.result());
    } catch (const muster::timeout_error& e) {
        message = e.what();
    }
    EXPECT_EQ(seen, (std::vector<int>{25}));
    EXPECT_NE(message.find("1 (of 2) futures unfinished"), std::string::npos) << message;
    h.release();
    EXPECT_EQ(p.result(), 36);
}

// item 48: map yields results in input order
TYPED_TEST(ExecutorContract, MapKeepsInputOrder) {
    auto& ex = *this->ex_;
    std::vector<int> input;
    for (int i = 0; i < 100; ++i) input.push_back(i);
    auto const out = TypeParam::map_square(ex, input);
    ASSERT_EQ(out.size(), input.size());
    for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], input[i] * input[i]);
    EXPECT_TRUE(TypeParam::map_square(ex, {}).empty());
}

// items 63, 65: after shutdown, submit throws shutdown_error; shutdown is idempotent
TYPED_TEST(ExecutorContract, SubmitAfterShutdownThrows) {
    auto& ex = *this->ex_;
    EXPECT_EQ(TypeParam::square(ex, 1).result(), 1);
    ex.shutdown();
    EXPECT_THROW((void)TypeParam::square(ex, 2), muster::shutdown_error);
    EXPECT_THROW((void)TypeParam::square(ex, 2), muster::error);
    EXPECT_NO_THROW(ex.shutdown());
    EXPECT_THROW((void)TypeParam::map_square(ex, {1, 2}), muster::shutdown_error);
}

// item 66: shutdown (wait) returns after every submitted task has completed
TYPED_TEST(ExecutorContract, ShutdownWaitsForSubmittedTasks) {
    auto& ex = *this->ex_;
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < 30; ++i) fs.push_back(TypeParam::square(ex, i));
    ex.shutdown();
    for (int i = 0; i < 30; ++i) {
        auto const& f = fs[static_cast<std::size_t>(i)];
        ASSERT_TRUE(f.done());
        EXPECT_EQ(f.result(0ms), i * i);
    }
}

// item 68: shutdown with cancel_pending cancels the tasks that have not started; the running ones
// finish normally
TYPED_TEST(ExecutorContract, ShutdownCancelPending) {
    auto& ex = *this->ex_;
    std::vector<muster::future<int>> pending;
    {
        typename TypeParam::hold h(ex);
        for (int i = 0; i < 5; ++i) pending.push_back(TypeParam::square(ex, i));
        ex.shutdown({.wait = false, .cancel_pending = true});
        for (auto const& f : pending) {
            EXPECT_TRUE(f.cancelled());
            EXPECT_THROW((void)f.result(), muster::cancelled_error);
        }
    }  // the held tasks finish normally
    ex.shutdown();
    for (auto const& f : pending) EXPECT_TRUE(f.cancelled());
    EXPECT_THROW((void)TypeParam::square(ex, 1), muster::shutdown_error);
}

}  // namespace
