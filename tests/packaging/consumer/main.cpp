// A consumer of the installed package: only <muster/muster.hpp> and the public names.
#include <muster/muster.hpp>

#include <cstdio>
#include <ranges>
#include <stdexcept>
#include <vector>

int main() {
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) {
            std::fprintf(stderr, "consumer check failed: %s\n", what);
            ++failures;
        }
    };
    {
        muster::thread_pool pool({.max_workers = 2});
        auto f = pool.submit([](int a, int b) { return a + b; }, 2, 3);
        check(f.result() == 5, "submit/result");

        std::vector<muster::future<int>> fs;
        for (int i = 0; i < 10; ++i) fs.push_back(pool.submit([i] { return i; }));
        auto [done, not_done] = muster::wait(fs, muster::return_when::all_completed);
        check(done.size() == 10 && not_done.empty(), "wait");

        int seen = 0;
        for (auto& g : muster::as_completed(fs)) seen += g.done() ? 1 : 0;
        check(seen == 10, "as_completed");

        int expected = 0;
        bool ordered = true;
        for (int v : pool.map([](int x) { return x * 2; }, std::views::iota(0, 20))) {
            ordered = ordered && v == expected;
            expected += 2;
        }
        check(ordered && expected == 40, "map");

        auto bad = pool.submit([]() -> int { throw std::runtime_error("boom"); });
        try {
            (void)bad.result();
            check(false, "exception propagates");
        } catch (const std::runtime_error&) {
        }
        pool.shutdown();
        try {
            (void)pool.submit([] { return 0; });
            check(false, "submit after shutdown throws");
        } catch (const muster::shutdown_error&) {
        }
    }
    return failures == 0 ? 0 : 1;
}
