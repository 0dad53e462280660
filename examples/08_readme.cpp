#include <muster/muster.hpp>

#include <cstdio>
#include <ranges>
#include <vector>

int main() {
    muster::thread_pool pool({.max_workers = 4});  // ThreadPoolExecutor(max_workers=4)

    // submit() returns a future; result() waits for it (and rethrows what the task threw).
    muster::future<int> product = pool.submit([](int a, int b) { return a * b; }, 6, 7);
    std::printf("6 * 7 = %d\n", product.result());

    // map() is lazy and keeps input order, like executor.map().
    long total = 0;
    for (long sq : pool.map([](long x) { return x * x; }, std::views::iota(1L, 101L))) total += sq;
    std::printf("sum of squares 1..100 = %ld\n", total);

    // as_completed() yields the futures in the order they finish.
    std::vector<muster::future<int>> futures;
    for (int i = 1; i <= 3; ++i) futures.push_back(pool.submit([i] { return 10 * i; }));
    for (auto& f : muster::as_completed(futures)) std::printf("finished: %d\n", f.result());

    return product.result() == 42 && total == 338350 ? 0 : 1;
}  // the pool's destructor waits for its tasks, like leaving a `with` block
