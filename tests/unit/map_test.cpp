// thread_pool::map: order, laziness (buffersize), exceptions, the deadline, dropping the range,
// input ownership and shutdown.
//
// Python reference items: 48 (input order whatever the completion order), 49 (contrast: muster's
// map is lazy by default), 50 (an exception surfaces at its position; [main] iteration
// continues), 51 (one deadline from the call; finished results still delivered), 52 (at the
// deadline the awaited and later tasks are cancelled and iteration ends), 53 (a task's own
// timeout error is its element's failure), 54 (dropping the range cancels not-started tasks), 55
// (no reference kept to yielded results), 59 (buffersize: exactly min(b, n) at the call, one more
// per step, infinite input), 61 and W6 (never silent truncation after shutdown), 70 (shutdown
// right after a map does not block), W4 (deterministic drop rule), W5 (per-element outcomes).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <muster/muster.hpp>
#include <mutex>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pool_test_support.hpp"

using namespace std::chrono_literals;
using muster_test::lifetime_counts;
using muster_test::poll_until;
using muster_test::tracked;
using muster_test::worker_hold;

namespace {
/// Counts the elements a map pulls (dereferences) from an input view.
auto pull_counter(std::atomic<int>& pulled) {
    return std::views::transform([&pulled](int i) {
        pulled.fetch_add(1);
        return i;
    });
}

/// The input view [0, n) that counts pulled elements.
auto counted_input(std::atomic<int>& pulled, int n) {
    return std::views::iota(0, n) | pull_counter(pulled);
}
}  // namespace

// Item 48: results come in input order although the tasks complete in reverse order.
TEST(Map, OrderIsPreservedWhateverTheCompletionOrder_Item48) {
    constexpr int n = 6;
    muster::thread_pool pool({.max_workers = n});
    std::vector<std::unique_ptr<std::latch>> finished;
    for (int i = 0; i <= n; ++i) finished.push_back(std::make_unique<std::latch>(1));
    finished[n]->count_down();  // nothing after the last element
    std::mutex mu;
    std::vector<int> completion;
    auto fn = [&](int i) {
        finished[static_cast<std::size_t>(i) + 1]->wait();  // i finishes after i + 1
        {
            std::lock_guard lock(mu);
            completion.push_back(i);
        }
        finished[static_cast<std::size_t>(i)]->count_down();
        return i * 10;
    };
    std::vector<int> out;
    for (int v : pool.map(fn, std::views::iota(0, n), {.buffersize = n})) out.push_back(v);
    EXPECT_EQ(out, (std::vector<int>{0, 10, 20, 30, 40, 50}));
    std::lock_guard lock(mu);
    EXPECT_EQ(completion, (std::vector<int>{5, 4, 3, 2, 1, 0}));
}

// Item 48: the output equals a sequential transform, for a long input and the default buffer.
TEST(Map, EqualsSequentialTransform_Item48) {
    muster::thread_pool pool({.max_workers = 2});
    std::vector<std::string> input;
    for (int i = 0; i < 1000; ++i) input.push_back(std::to_string(i));
    std::vector<std::size_t> out;
    for (std::size_t v : pool.map([](const std::string& s) { return s.size() * 2; }, input))
        out.push_back(v);
    ASSERT_EQ(out.size(), input.size());
    for (std::size_t i = 0; i < input.size(); ++i) EXPECT_EQ(out[i], input[i].size() * 2);
}

// Item 59: an empty input gives an empty range.
TEST(Map, EmptyInputGivesEmptyRange_Item59) {
    muster::thread_pool pool({.max_workers = 1});
    std::vector<int> none;
    auto r = pool.map([](int x) { return x; }, none);
    EXPECT_TRUE(r.begin() == r.end());
    EXPECT_EQ(pool.stats().workers, 0u);
}

// Item 59: the call submits exactly min(b, n) tasks; begin() pulls one more before waiting.
TEST(Map, CallSubmitsExactlyMinOfBuffersizeAndLength_Item59) {
    muster::thread_pool pool({.max_workers = 1});
    worker_hold hold(pool);
    std::atomic<int> pulled{0};
    {
        auto r = pool.map([](int x) { return x; }, counted_input(pulled, 10), {.buffersize = 4});
        EXPECT_EQ(pulled.load(), 4);
        (void)r.begin();
        EXPECT_EQ(pulled.load(), 5);
    }
    pulled = 0;
    {
        auto r = pool.map([](int x) { return x; }, counted_input(pulled, 2), {.buffersize = 4});
        EXPECT_EQ(pulled.load(), 2);
    }
}

// Item 49 (contrast, W4): without a buffersize muster's map is lazy too: the default buffer is
// 2 * max_workers, not the whole input.
TEST(Map, DefaultBufferIsTwiceMaxWorkers_Item49) {
    muster::thread_pool pool({.max_workers = 3});
    std::atomic<int> pulled{0};
    auto r = pool.map([](int x) { return x; }, counted_input(pulled, 100));
    EXPECT_EQ(pulled.load(), 6);
}

// Item 59: each step pulls exactly one more element, so the input is never more than b + 1
// elements ahead of the consumer.
TEST(Map, PullsOneMorePerStep_Item59) {
    constexpr int n = 100;
    constexpr int b = 3;
    muster::thread_pool pool({.max_workers = 2});
    std::atomic<int> pulled{0};
    auto r = pool.map([](int x) { return x * 2; }, counted_input(pulled, n), {.buffersize = b});
    int i = 0;
    for (auto it = r.begin(); it != r.end(); ++it, ++i) {
        EXPECT_EQ(*it, 2 * i);
        EXPECT_EQ(pulled.load(), std::min(n, i + b + 1)) << "at element " << i;
    }
    EXPECT_EQ(i, n);
    EXPECT_EQ(pulled.load(), n);
}

// Item 59: while the consumer waits on a task that cannot finish, the input stays at b + 1 pulled
// elements: nothing more is read ahead.
TEST(Map, WaitingConsumerDoesNotReadAhead_Item59) {
    constexpr int b = 2;
    muster::thread_pool pool({.max_workers = 2});
    std::latch gate(1);
    std::atomic<int> pulled{0};
    auto r = pool.map(
        [&](int x) {
            gate.wait();
            return x;
        },
        counted_input(pulled, 50), {.buffersize = b});
    EXPECT_EQ(pulled.load(), b);
    std::vector<int> out;
    std::thread consumer([&] {
        for (int v : r) out.push_back(v);
    });
    ASSERT_TRUE(poll_until([&] { return pulled.load() == b + 1; }));
    bool const read_ahead = poll_until([&] { return pulled.load() > b + 1; }, 50ms);
    EXPECT_FALSE(read_ahead) << pulled.load();
    gate.count_down();
    consumer.join();
    ASSERT_EQ(out.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i);
}

// Items 54, 59: an infinite input with an early break works; dropping the range cancels the
// buffered tasks that have not started. Elements from 10 on block the only worker; the input
// hands out element 10 only once elements 0..9 have run, so exactly one gated task runs and the
// other four buffered ones are still pending when the range is dropped.
TEST(Map, InfiniteInputWithEarlyBreakCancelsTheRest_Item54_Item59) {
    constexpr int b = 5;
    muster::thread_pool pool({.max_workers = 1});
    std::atomic<int> pulled{0};
    std::atomic<int> executed{0};
    std::latch first_ten_ran(10);
    std::latch gate(1);
    std::latch gated_running(1);
    std::atomic<bool> first_gated{true};
    auto input = std::views::iota(0) | std::views::transform([&](int i) {
                     pulled.fetch_add(1);
                     if (i == 10) first_ten_ran.wait();  // runs on the consumer's thread
                     return i;
                 });
    std::vector<int> out;
    {
        auto r = pool.map(
            [&](int x) {
                executed.fetch_add(1);
                if (x < 10) {
                    first_ten_ran.count_down();
                } else {
                    if (first_gated.exchange(false)) gated_running.count_down();
                    gate.wait();
                }
                return x;
            },
            input, {.buffersize = b});
        for (int v : r) {
            out.push_back(v);
            if (v == 9) break;
        }
        gated_running.wait();
        EXPECT_EQ(pulled.load(), 10 + b);  // elements 0..14: the front (9) plus b in flight
    }
    gate.count_down();
    pool.wait_idle();
    EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(executed.load(), 11);  // 0..9 and one gated task; the drop cancelled the other four
    EXPECT_EQ(pool.stats().cancelled, 4u);
}

// Item 54, W4: dropping a range that was never iterated cancels every task that has not started.
TEST(Map, DroppingAnUniteratedRangeCancelsPendingTasks_Item54_W4) {
    muster::thread_pool pool({.max_workers = 1});
    std::atomic<int> executed{0};
    {
        worker_hold hold(pool);
        auto r = pool.map(
            [&](int x) {
                executed.fetch_add(1);
                return x;
            },
            std::views::iota(0, 10), {.buffersize = 5});
    }
    pool.wait_idle();
    EXPECT_EQ(executed.load(), 0);
    EXPECT_EQ(pool.stats().cancelled, 5u);
}

// Items 50, W5: an exception surfaces when its position is reached, earlier results come first,
// the exception is the task's own, and iteration continues after it.
TEST(Map, ExceptionAtItsPositionAndIterationContinues_Item50_W5) {
    muster::thread_pool pool({.max_workers = 2});
    auto r = pool.map(
        [](int x) {
            if (x == 3 || x == 6) throw std::domain_error("bad " + std::to_string(x));
            return x;
        },
        std::views::iota(0, 9), {.buffersize = 4});
    std::vector<std::string> events;
    for (auto it = r.begin(); it != r.end(); ++it) {
        try {
            events.push_back(std::to_string(*it));
        } catch (const std::domain_error& e) {
            events.push_back(e.what());
        }
    }
    EXPECT_EQ(events,
              (std::vector<std::string>{"0", "1", "2", "bad 3", "4", "5", "bad 6", "7", "8"}));
}

// Items 51, 52: the deadline counts from the map() call. After it has passed, results already
// finished are still delivered; the element being waited for throws timeout_error, later pending
// tasks are cancelled (they never run), and the iteration ends.
TEST(Map, TimeoutCountsFromTheCall_Item51_Item52) {
    muster::thread_pool pool({.max_workers = 1});
    std::latch gate(1);
    std::latch third_running(1);
    std::mutex mu;
    std::vector<int> executed;
    auto const timeout = 50ms;
    std::optional<worker_hold> hold(std::in_place, pool);
    auto const called = std::chrono::steady_clock::now();
    // Elements 0..2 are submitted by the call while the worker is held; 3..5 by later steps.
    auto r = pool.map(
        [&](int x) {
            {
                std::lock_guard lock(mu);
                executed.push_back(x);
            }
            if (x == 2) {
                third_running.count_down();
                gate.wait();
            }
            return x;
        },
        std::views::iota(0, 6), {.buffersize = 3, .timeout = timeout});
    hold.reset();          // the worker takes 0, 1, 2 as one batch, in order
    third_running.wait();  // so elements 0 and 1 have finished
    // Let the deadline pass before the first step: a deadline measured from the first step
    // would not have started yet.
    ASSERT_TRUE(poll_until([&] { return std::chrono::steady_clock::now() > called + timeout; }));
    auto it = r.begin();
    EXPECT_EQ(*it, 0);
    ++it;
    EXPECT_EQ(*it, 1);
    ++it;
    EXPECT_THROW((void)*it, muster::timeout_error);
    ++it;
    EXPECT_TRUE(it == r.end());
    gate.count_down();
    pool.wait_idle();
    std::lock_guard lock(mu);
    EXPECT_EQ(executed, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(pool.stats().cancelled, 3u);  // 3, 4 and 5, pulled by the steps, never ran
}

// Item 53, W5: a timeout_error thrown by a task is that element's failure, not the map's
// deadline: the following elements are still delivered.
TEST(Map, TaskTimeoutErrorIsNotTheDeadline_Item53) {
    muster::thread_pool pool({.max_workers = 2});
    auto r = pool.map(
        [](int x) {
            if (x == 2) throw muster::timeout_error("inner wait timed out");
            return x;
        },
        std::views::iota(0, 5), {.timeout = std::chrono::hours(1)});
    std::vector<std::string> events;
    for (auto it = r.begin(); it != r.end(); ++it) {
        try {
            events.push_back(std::to_string(*it));
        } catch (const muster::timeout_error& e) {
            events.push_back(e.what());
        }
    }
    EXPECT_EQ(events, (std::vector<std::string>{"0", "1", "inner wait timed out", "3", "4"}));
}

// Item 51: with a deadline that is never reached, every result is delivered.
TEST(Map, GenerousTimeoutDeliversEverything_Item51) {
    muster::thread_pool pool({.max_workers = 2});
    int sum = 0;
    for (int v : pool.map([](int x) { return x; }, std::views::iota(0, 100),
                          {.timeout = std::chrono::hours(1)}))
        sum += v;
    EXPECT_EQ(sum, 4950);
}

// An lvalue input is referenced, not copied: a change made after the call, to an element not
// pulled yet, is seen; only pulled elements are copied (into their tasks).
TEST(Map, LvalueInputIsReferenced) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 1});
    std::vector<tracked> input;
    input.reserve(10);
    for (int i = 0; i < 10; ++i) input.emplace_back(c, i);
    long const copies_before = c.copies.load();
    auto r = pool.map([](const tracked& t) { return t.value(); }, input, {.buffersize = 1});
    EXPECT_EQ(c.copies.load() - copies_before, 1);  // element 0, copied into its task
    input[5] = tracked(c, 500);
    std::vector<int> out;
    for (int v : r) out.push_back(v);
    EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3, 4, 500, 6, 7, 8, 9}));
}

// An rvalue input (a std::vector) is moved into the range: the caller's vector is left empty, no
// element is copied by the move, and the range may outlive the caller's scope.
TEST(Map, RvalueInputIsMovedIn) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 1});
    auto make_range = [&pool, &c] {
        std::vector<tracked> local;
        local.reserve(8);
        for (int i = 0; i < 8; ++i) local.emplace_back(c, i);
        long const copies_before = c.copies.load();
        auto r = pool.map([](const tracked& t) { return t.value() * 3; }, std::move(local),
                          {.buffersize = 2});
        EXPECT_TRUE(local.empty());  // NOLINT(bugprone-use-after-move): moved-from on purpose
        EXPECT_EQ(c.copies.load() - copies_before, 2);  // only the two pulled elements
        return r;
    };
    auto r = make_range();
    std::vector<int> out;
    for (int v : r) out.push_back(v);
    EXPECT_EQ(out, (std::vector<int>{0, 3, 6, 9, 12, 15, 18, 21}));
}

// Item 55: the range keeps no reference to results it has yielded; results are never copied and
// each is destroyed exactly once.
TEST(Map, YieldedResultsAreReleased_Item55) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 2});
    {
        auto r = pool.map([&c](int x) { return tracked(c, x); }, std::views::iota(0, 50),
                          {.buffersize = 4});
        int i = 0;
        for (auto it = r.begin(); it != r.end(); ++it, ++i) {
            EXPECT_EQ((*it).value(), i);
            // The current element and at most b + 1 in flight (each with its moved-from slot).
            EXPECT_LE(c.alive(), 2 * (4 + 2));
        }
        EXPECT_EQ(i, 50);
        pool.wait_idle();         // the workers' references to finished tasks are gone too
        EXPECT_EQ(c.alive(), 0);  // all released before the range itself goes away
    }
    EXPECT_EQ(c.copies.load(), 0);
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// The callable is stored once in the range (copied or moved in at the call) and not copied per
// element; it is destroyed with the range.
TEST(Map, CallableIsNotCopiedPerElement) {
    lifetime_counts c;
    muster::thread_pool pool({.max_workers = 2});
    {
        auto fn = [t = tracked(c, 1)](int x) { return x + t.value(); };
        long const copies_before = c.copies.load();
        auto r = pool.map(std::move(fn), std::views::iota(0, 20), {.buffersize = 3});
        int n = 0;
        for (int v : r) EXPECT_EQ(v, 1 + n++);
        // Each task gets a copy of the callable it runs: no more copies than elements.
        EXPECT_LE(c.copies.load() - copies_before, 20);
    }
    pool.wait_idle();
    EXPECT_EQ(c.alive(), 0);
    EXPECT_EQ(c.double_destroyed.load(), 0);
}

// Items 61, W6: a map on a pool that was shut down throws shutdown_error at the call.
TEST(Map, MapOnAShutDownPoolThrows_W6) {
    muster::thread_pool pool({.max_workers = 1});
    pool.shutdown();
    EXPECT_THROW((void)pool.map([](int x) { return x; }, std::views::iota(0, 3)),
                 muster::shutdown_error);
}

// Items 61, 70, W6: shutdown right after a map with more tasks than workers does not block;
// a later step that must refill the buffer throws shutdown_error instead of ending silently.
TEST(Map, ShutdownDuringIterationNeverTruncatesSilently_Item61_Item70_W6) {
    muster::thread_pool pool({.max_workers = 1});
    auto r = pool.map([](int x) { return x; }, std::views::iota(0, 10), {.buffersize = 3});
    pool.shutdown();  // item 70: returns (the three buffered tasks finish)
    std::vector<int> got;
    bool threw = false;
    try {
        for (int v : r) got.push_back(v);
    } catch (const muster::shutdown_error&) {
        threw = true;
    }
    EXPECT_TRUE(threw) << "iteration ended after " << got.size() << " of 10 elements";
    EXPECT_LT(got.size(), 10u);
}

// W6: a range may outlive its pool. If every input element was already submitted it delivers
// them all; if it needs to submit more it throws shutdown_error.
TEST(Map, RangeOutlivingItsPool_W6) {
    std::optional<muster::thread_pool> pool(std::in_place,
                                            muster::thread_pool_options{.max_workers = 2});
    auto complete =
        pool->map([](int x) { return x + 1; }, std::views::iota(0, 4), {.buffersize = 4});
    auto partial =
        pool->map([](int x) { return x + 1; }, std::views::iota(0, 10), {.buffersize = 2});
    pool.reset();
    std::vector<int> out;
    for (int v : complete) out.push_back(v);
    EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_THROW(
        {
            for (int v : partial) (void)v;
        },
        muster::shutdown_error);
}
