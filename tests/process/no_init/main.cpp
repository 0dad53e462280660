// A program whose main does NOT call muster::init: its process pool must report broken_pool
// with a message that says what to do, promptly and without a stray copy of main running on.
#include <gtest/gtest.h>
#include <muster/process_pool.hpp>

#include "process_info.hpp"

#include <chrono>
#include <string>

namespace {
int add(int a, int b) { return a + b; }
}  // namespace

class ProcessPoolNoInit : public testing::TestWithParam<muster::process_start> {};

// With the fork server, the server is the process that runs main without init; with spawn, the
// worker is.
TEST_P(ProcessPoolNoInit, SubmitReportsMissingInit) {
    auto const t0 = std::chrono::steady_clock::now();
    muster::process_pool pool({.max_workers = 1, .start_method = GetParam()});
    auto f = pool.submit<&add>(1, 2);
    try {
        f.result();
        FAIL() << "the task ran without muster::init";
    } catch (const muster::broken_pool& e) {
        EXPECT_NE(std::string(e.what()).find("muster::init"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)pool.submit<&add>(1, 2), muster::broken_pool);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ProcessPoolNoInit,
                         testing::Values(muster::process_start::fork_server,
                                         muster::process_start::spawn),
                         testing::PrintToStringParamName());

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
