// expect-error: needs a callable that returns a value
// thread_pool::map yields the callable's results; a callable returning void is refused with a
// message that points to submit()/post() instead.
#include <muster/muster.hpp>
#include <vector>

int main() {
    muster::thread_pool pool;
    std::vector<int> input{1, 2, 3};
    for (auto&& v : pool.map([](int) {}, input)) (void)v;
}
