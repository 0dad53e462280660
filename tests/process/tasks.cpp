#include "tasks.hpp"

#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unistd.h>

namespace ptest {

int add(int a, int b) { return a + b; }
std::string greet(std::string name) { return "hello, " + name; }
std::vector<int> doubled(std::vector<int> v) {
    for (int& x : v) x *= 2;
    return v;
}
point moved(point p, int dx) {
    p.x += dx;
    p.label += "!";
    return p;
}
void nothing() {}
int fail_with(std::string msg) { throw std::invalid_argument(msg); }
int crash(int how) {
    switch (how) {
        case 0:
            std::raise(SIGSEGV);
            break;
        case 1:
            std::abort();
        case 2:
            std::exit(3);
        case 3: {
            // Far above the pool's memory limit: fails with std::bad_alloc in the worker.
            auto p = std::make_unique<char[]>(std::size_t{4} << 30);
            p[0] = 1;
            return p[0];
        }
        case 4:
            for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    return -1;
}
int my_pid() { return static_cast<int>(::getpid()); }
point tagged(int x) { return point{x, my_pid(), {}}; }
int size_of(std::string s) { return static_cast<int>(s.size()); }
int square(int x) { return x * x; }
int slow_square(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(x % 3));
    return x * x;
}
int square_or_throw(int x) {
    if (x % 7 == 3) throw std::runtime_error("bad " + std::to_string(x));
    return x * x;
}
int write_garbage(int mode) {
    int const fd = muster::detail::worker_channel_fd();
    if (mode == 0) {
        const unsigned char frame[] = {0xff, 0xff, 0xff, 0x7f, 'x', 'y'};
        [[maybe_unused]] auto r = ::write(fd, frame, sizeof frame);
    } else {
        const unsigned char frame[] = {2, 0, 0, 0, 99, 1};
        [[maybe_unused]] auto r = ::write(fd, frame, sizeof frame);
    }
    std::this_thread::sleep_for(std::chrono::seconds(30));
    return 0;
}
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
void failing_initializer() { throw std::runtime_error("no database"); }

namespace {
/// The children of process `pid` ("self" for this one), from every thread's children list.
std::vector<std::string> children_of(const std::string& pid) {
    std::vector<std::string> out;
    std::string const dir = "/proc/" + pid + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream f(dir + "/" + e->d_name + "/children");
        for (std::string c; f >> c;) out.push_back(c);
    }
    ::closedir(d);
    return out;
}
}  // namespace

std::size_t child_count() { return children_of("self").size(); }

std::size_t worker_count() {
    std::size_t n = 0;
    for (const std::string& c : children_of("self")) {
        std::ifstream f("/proc/" + c + "/cmdline");
        std::string argv0, argv1;
        std::getline(f, argv0, '\0');
        std::getline(f, argv1, '\0');
        n += argv1 == "--muster-fork-server" ? children_of(c).size() : 1;
    }
    return n;
}

std::size_t wait_children(std::size_t n, std::chrono::milliseconds within) {
    auto const end = std::chrono::steady_clock::now() + within;
    std::size_t c = child_count();
    while (c > n && std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        c = child_count();
    }
    return c;
}

bool segv_reported(int signal, int exit_status) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return signal == SIGSEGV || signal == SIGABRT || exit_status > 0;
#else
    (void)exit_status;
    return signal == SIGSEGV;
#endif
}

int stress_scale() {
    const char* s = std::getenv("MUSTER_STRESS_SCALE");
    int const v = s ? std::atoi(s) : 1;
    return v > 0 ? v : 1;
}

}  // namespace ptest
