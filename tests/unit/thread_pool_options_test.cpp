// thread_pool_options: construction checks, option edge values and the default worker count.
//
// Python reference items: 58 (buffersize validation), 73 (max_workers <= 0 is an error), 75
// (default max_workers), W15 (validate every option the same way, at construction).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <muster/muster.hpp>
#include <string>
#include <thread>
#include <vector>

#include "pool_test_support.hpp"

using namespace std::chrono_literals;

namespace {

/// Runs `make`, which must throw muster::invalid_argument; returns its message.
template <class F>
std::string invalid_argument_message(F&& make) {
    try {
        make();
    } catch (const muster::invalid_argument& e) {
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "expected muster::invalid_argument, got: " << e.what();
        return {};
    }
    ADD_FAILURE() << "expected muster::invalid_argument, nothing was thrown";
    return {};
}

}  // namespace

// Item 73: max_workers = 0 is refused, and the message names the option.
TEST(ThreadPoolOptions, ZeroMaxWorkersThrowsInvalidArgument_Item73) {
    std::string const msg =
        invalid_argument_message([] { muster::thread_pool pool({.max_workers = 0}); });
    EXPECT_NE(msg.find("max_workers"), std::string::npos) << msg;
}

// W15: min_workers > max_workers is refused; the message names min_workers.
TEST(ThreadPoolOptions, MinWorkersAboveMaxWorkersThrowsInvalidArgument_W15) {
    std::string const msg = invalid_argument_message(
        [] { muster::thread_pool pool({.max_workers = 2, .min_workers = 3}); });
    EXPECT_NE(msg.find("min_workers"), std::string::npos) << msg;
}

// W15: negative durations are refused, each naming its option.
TEST(ThreadPoolOptions, NegativeKeepAliveThrowsInvalidArgument_W15) {
    std::string const msg = invalid_argument_message(
        [] { muster::thread_pool pool({.max_workers = 1, .keep_alive = -1ms}); });
    EXPECT_NE(msg.find("keep_alive"), std::string::npos) << msg;
}

TEST(ThreadPoolOptions, NegativeSpinThrowsInvalidArgument_W15) {
    std::string const msg = invalid_argument_message([] {
        muster::thread_pool pool({.max_workers = 1, .spin = std::chrono::microseconds(-1)});
    });
    EXPECT_NE(msg.find("spin"), std::string::npos) << msg;
}

TEST(ThreadPoolOptions, NegativeBlockTimeoutThrowsInvalidArgument_W15) {
    std::string const msg = invalid_argument_message([] {
        muster::thread_pool pool({.max_workers = 1,
                                  .queue_capacity = 4,
                                  .overflow = muster::overflow_policy::block,
                                  .block_timeout = -5ms});
    });
    EXPECT_NE(msg.find("block_timeout"), std::string::npos) << msg;
}

// W15: an overflow value outside the enumerators is refused.
TEST(ThreadPoolOptions, InvalidOverflowEnumThrowsInvalidArgument_W15) {
    std::string const msg = invalid_argument_message([] {
        muster::thread_pool pool({.max_workers = 1,
                                  .queue_capacity = 4,
                                  .overflow = static_cast<muster::overflow_policy>(42)});
    });
    EXPECT_NE(msg.find("overflow"), std::string::npos) << msg;
}

// The library's invalid_argument belongs to the muster::error family.
TEST(ThreadPoolOptions, InvalidArgumentIsAMusterError) {
    EXPECT_THROW(muster::thread_pool pool({.max_workers = 0}), muster::error);
}

// Item 58: map and map_unordered refuse buffersize = 0 at the call, before any task is
// submitted.
TEST(ThreadPoolOptions, MapBuffersizeZeroThrowsInvalidArgument_Item58) {
    muster::thread_pool pool({.max_workers = 1});
    std::atomic<int> ran{0};
    std::vector<int> input{1, 2, 3};
    auto fn = [&](int x) {
        ran.fetch_add(1);
        return x;
    };
    std::string msg =
        invalid_argument_message([&] { (void)pool.map(fn, input, {.buffersize = 0}); });
    EXPECT_NE(msg.find("buffersize"), std::string::npos) << msg;
    msg = invalid_argument_message([&] { (void)pool.map_unordered(fn, input, {.buffersize = 0}); });
    EXPECT_NE(msg.find("buffersize"), std::string::npos) << msg;
    pool.wait_idle();
    EXPECT_EQ(ran.load(), 0);
    EXPECT_EQ(pool.stats().workers, 0u);  // nothing was submitted, so no worker was started
}

// Boundary values are valid: min_workers == max_workers, zero keep_alive, zero spin and a zero
// block_timeout; such a pool runs tasks.
TEST(ThreadPoolOptions, BoundaryValuesAreAccepted) {
    muster::thread_pool pool({.max_workers = 2,
                              .min_workers = 2,
                              .keep_alive = 0ms,
                              .queue_capacity = 8,
                              .overflow = muster::overflow_policy::block,
                              .block_timeout = 0ms,
                              .spin = std::chrono::microseconds(0)});
    EXPECT_EQ(pool.max_workers(), 2u);
    EXPECT_EQ(pool.submit([] { return 41 + 1; }).result(), 42);
}

// keep_alive = 0 with no minimum: idle workers leave at once, and a later submit still finds
// (or starts) a worker.
TEST(ThreadPoolOptions, ZeroKeepAliveStillRunsLaterTasks) {
    muster::thread_pool pool(
        {.max_workers = 2, .keep_alive = 0ms, .spin = std::chrono::microseconds(0)});
    for (int i = 0; i < 20; ++i) EXPECT_EQ(pool.submit([i] { return i; }).result(), i);
}

// Item 75: the default worker count is at least 1, equals the hardware's thread count, and is
// what an options aggregate and a default-constructed pool use.
TEST(ThreadPoolOptions, DefaultMaxWorkersIsAtLeastOneAndIsTheDefault_Item75) {
    std::size_t const d = muster::default_max_workers();
    EXPECT_GE(d, 1u);
    unsigned const hw = std::thread::hardware_concurrency();
    EXPECT_EQ(d, hw == 0 ? 1u : static_cast<std::size_t>(hw));
    EXPECT_EQ(muster::thread_pool_options{}.max_workers, d);
    muster::thread_pool pool;
    EXPECT_EQ(pool.max_workers(), d);
}

// The other documented defaults.
TEST(ThreadPoolOptions, DocumentedDefaults) {
    muster::thread_pool_options const o{};
    EXPECT_EQ(o.min_workers, 0u);
    EXPECT_EQ(o.queue_capacity, 0u);
    EXPECT_EQ(o.overflow, muster::overflow_policy::block);
    EXPECT_FALSE(o.block_timeout.has_value());
    EXPECT_TRUE(o.name_prefix.empty());
    EXPECT_GT(o.keep_alive.count(), 0);
    muster::shutdown_options const s{};
    EXPECT_TRUE(s.wait);
    EXPECT_FALSE(s.cancel_pending);
    muster::map_options const m{};
    EXPECT_FALSE(m.buffersize.has_value());
    EXPECT_FALSE(m.timeout.has_value());
}
