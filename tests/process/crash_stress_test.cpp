// Crash injection mixed with normal tasks: every normal result is right, every injected failure
// reports its cause, nothing hangs and no worker is left behind. Scales with MUSTER_STRESS_SCALE:
// 200 injected failures per unit of scale (50 under the sanitizers, whose workers start slower).
#include <gtest/gtest.h>
#include <muster/process.hpp>

#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include "tasks.hpp"

using namespace std::chrono_literals;
using namespace ptest;

class ProcessPoolStress : public ::testing::TestWithParam<muster::process_start> {};

TEST_P(ProcessPoolStress, CrashInjection) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    int const failures = 50 * stress_scale();
#else
    int const failures = 200 * stress_scale();
#endif
    {
        muster::process_pool pool({.max_workers = 2,
                                   .task_timeout = 2000ms,
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
                                   .memory_limit = std::size_t{1} << 30,
#endif
                                   .kill_grace = 50ms,
                                   .start_method = GetParam()});
        struct item {
            int kind;  // -1 normal, else crash(kind)
            int arg;
            muster::future<int> f;
        };
        std::vector<item> items;
        for (int i = 0; i < failures; ++i) {
            for (int k = 0; k < 3; ++k) items.push_back({-1, i * 3 + k, pool.submit<&square>(i * 3 + k)});
            int kind = i % 5;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
            if (kind == 3) kind = 2;  // no memory limit under sanitizers
#endif
            if (kind == 4) {
                items.push_back({4, 0, pool.submit_with<&crash>({.timeout = 100ms}, 4)});
            } else {
                items.push_back({kind, 0, pool.submit<&crash>(kind)});
            }
        }
        for (auto& it : items) {
            switch (it.kind) {
                case -1:
                    EXPECT_EQ(it.f.result(), it.arg * it.arg);
                    break;
                case 0:
                case 1:
                case 2:
                    try {
                        it.f.result();
                        ADD_FAILURE() << "crash " << it.kind << " returned";
                    } catch (const muster::worker_lost_error& e) {
                        if (it.kind == 0) {
                            EXPECT_TRUE(segv_reported(e.signal(), e.exit_status())) << e.what();
                        } else if (it.kind == 1) {
                            EXPECT_EQ(e.signal(), SIGABRT) << e.what();
                        }
                        if (it.kind == 2) {
                            EXPECT_EQ(e.exit_status(), 3) << e.what();
                        }
                    }
                    break;
                case 3:
                    try {
                        it.f.result();
                        ADD_FAILURE() << "allocation succeeded";
                    } catch (const muster::remote_error& e) {
                        EXPECT_EQ(e.type_name(), "std::bad_alloc");
                    }
                    break;
                case 4:
                    EXPECT_THROW(it.f.result(), muster::timeout_error);
                    break;
            }
        }
    }
    EXPECT_EQ(child_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ProcessPoolStress,
                         ::testing::Values(muster::process_start::fork_server,
                                           muster::process_start::spawn),
                         ::testing::PrintToStringParamName());
