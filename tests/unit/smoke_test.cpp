#include <gtest/gtest.h>
#include <muster/muster.hpp>

TEST(Smoke, SubmitResult) {
    muster::thread_pool pool({.max_workers = 2});
    auto f = pool.submit([](int a, int b) { return a + b; }, 2, 3);
    EXPECT_EQ(f.result(), 5);
}
