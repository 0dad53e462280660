// expect-error: cannot run in another process
// A lambda with captures cannot be a process-pool task: the message says what to do instead.
#include <muster/process_pool.hpp>

int main() {
    muster::process_pool pool;
    int base = 1;
    pool.submit([base](int x) { return base + x; }, 2);
}
