// expect-error: needs a callable that returns a value
// thread_pool::map_unordered refuses a void-returning callable like map.
#include <muster/muster.hpp>
#include <vector>

int main() {
    muster::thread_pool pool;
    std::vector<int> input{1, 2, 3};
    for (auto&& v : pool.map_unordered([](int) {}, input)) (void)v;
}
