// expect-error: constraints not satisfied|no matching
// thread_pool::post has the same constraint as submit: the callable must be invocable with the
// given arguments (here: too many arguments).
#include <muster/thread_pool.hpp>

int main() {
    muster::thread_pool pool;
    pool.post([](int x) { (void)x; }, 1, 2);
}
