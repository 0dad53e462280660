// expect-error: deleted
// A muster::thread_pool cannot be copy-assigned either.
#include <muster/thread_pool.hpp>

int main() {
    muster::thread_pool a({.max_workers = 1});
    muster::thread_pool b({.max_workers = 1});
    b = a;
}
