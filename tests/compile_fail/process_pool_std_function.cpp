// expect-error: plain functions known to every process
// A std::function object is not a function known to every process.
#include <functional>
#include <muster/process_pool.hpp>

const std::function<int(int)> twice = [](int x) { return 2 * x; };

int main() {
    muster::process_pool pool;
    (void)pool.submit<&twice>(2);
}
