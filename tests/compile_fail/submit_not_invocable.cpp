// expect-error: constraints not satisfied|no matching
// thread_pool::submit requires a callable invocable with the given (decayed) arguments: a
// callable taking a std::string cannot be submitted with an int.
#include <muster/thread_pool.hpp>
#include <string>

int main() {
    muster::thread_pool pool;
    auto f = pool.submit([](const std::string& s) { return s.size(); }, 42);
    return static_cast<int>(f.result());
}
