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

TEST(Smoke, ParallelForAndBulk) {
    muster::thread_pool pool({.max_workers = 2});
    std::vector<int> v(10000, 0);
    muster::parallel_for(pool, 0, 10000, [&](int i) { v[static_cast<std::size_t>(i)] = i; });
    for (int i = 0; i < 10000; ++i) ASSERT_EQ(v[static_cast<std::size_t>(i)], i);
    std::atomic<long> sum{0};
    muster::parallel_for(pool, std::size_t{0}, std::size_t{1000},
                         [&](std::size_t b, std::size_t e) { for (auto i = b; i < e; ++i) sum += long(i); },
                         {.grain = 7});
    EXPECT_EQ(sum.load(), 999L * 1000 / 2);
    auto fs = pool.submit_bulk(100, [](std::size_t i) { return i * 2; });
    for (std::size_t i = 0; i < 100; ++i) EXPECT_EQ(fs[i].result(), i * 2);
    std::atomic<int> c{0};
    pool.post_bulk(1000, [&](std::size_t) { c.fetch_add(1); });
    pool.wait_idle();
    EXPECT_EQ(c.load(), 1000);
    EXPECT_THROW(muster::parallel_for(pool, 0, 10, [](int) { throw std::runtime_error("x"); }), std::runtime_error);
}
