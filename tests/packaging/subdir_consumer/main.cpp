#include <muster/muster.hpp>

int main() {
    muster::thread_pool pool({.max_workers = 2});
    auto f = pool.submit([](int a, int b) { return a + b; }, 2, 3);
    return f.result() == 5 ? 0 : 1;
}
