// expect-error: deleted
// A muster::thread_pool owns its workers and cannot be copied.
#include <muster/thread_pool.hpp>

int main() {
    muster::thread_pool pool({.max_workers = 1});
    muster::thread_pool copy(pool);
    (void)copy;
}
