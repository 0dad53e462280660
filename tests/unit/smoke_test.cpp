#include <gtest/gtest.h>
#include <muster/muster.hpp>

#include <ranges>
#include <stdexcept>
#include <vector>

TEST(Smoke, SubmitResult) {
    muster::thread_pool pool({.max_workers = 2});
    auto f = pool.submit([](int a, int b) { return a + b; }, 2, 3);
    EXPECT_EQ(f.result(), 5);
}

TEST(Smoke, WaitAsCompletedMap) {
    muster::thread_pool pool({.max_workers = 2});
    std::vector<muster::future<int>> fs;
    for (int i = 0; i < 100; ++i) fs.push_back(pool.submit([i] { return i * i; }));
    auto r = muster::wait(fs);
    EXPECT_EQ(r.done.size(), 100u);
    int n = 0;
    for (auto& f : muster::as_completed(fs)) { (void)f.result(); ++n; }
    EXPECT_EQ(n, 100);
    std::vector<int> out;
    for (int v : pool.map([](int x) { return x + 1; }, std::views::iota(0, 50))) out.push_back(v);
    ASSERT_EQ(out.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(out[i], i + 1);
    int cnt = 0;
    for (int v : pool.map_unordered([](int x) { return x; }, std::views::iota(0, 50))) { cnt += v; }
    EXPECT_EQ(cnt, 49 * 50 / 2);
    muster::completion_queue<int, std::string> cq;
    cq.submit(pool, "a", [] { return 1; });
    cq.submit(pool, "b", [] { return 2; });
    EXPECT_EQ(cq.wait_for_tag("b").result(), 2);
    cq.wait_all();
    auto res = cq.take_results();
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0].first, "a");
}

static int fib(muster::thread_pool& pool, int n) {
    if (n < 12) { return n < 2 ? n : fib(pool, n - 1) + fib(pool, n - 2); }
    auto a = pool.submit([&pool, n] { return fib(pool, n - 1); });
    int b = fib(pool, n - 2);
    return a.result() + b;
}

TEST(Smoke, ForkJoinOneWorker) {
    muster::thread_pool pool({.max_workers = 1});
    auto f = pool.submit([&pool] { return fib(pool, 25); });
    EXPECT_EQ(f.result(), 75025);
}
