// A consumer of the installed package's process pool (muster::process): registered tasks run in
// worker processes, which are this program re-executed, so main calls muster::init first.
#include <muster/process.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

long long square(long long x) { return x * x; }

int worker_pid() { return static_cast<int>(::getpid()); }

std::string refuse(std::string why) { throw std::invalid_argument(why); }

}  // namespace

int main(int argc, char** argv) {
    muster::init(argc, argv);  // in a worker process this never returns

    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) {
            std::fprintf(stderr, "process consumer check failed: %s\n", what);
            ++failures;
        }
    };
    {
        muster::process_pool pool({.max_workers = 2});
        check(pool.submit<&square>(7LL).result() == 49, "submit/result");

        int const pid = pool.submit<&worker_pid>().result();
        check(pid > 0 && pid != static_cast<int>(::getpid()), "the task ran in another process");

        std::vector<long long> const inputs{1, 2, 3, 4, 5};
        long long sum = 0;
        for (long long v : pool.map<&square>(inputs)) sum += v;
        check(sum == 55, "map");

        try {
            (void)pool.submit<&refuse>(std::string("no")).result();
            check(false, "a remote exception propagates");
        } catch (const muster::remote_error& e) {
            check(e.message() == "no", "remote_error carries what()");
        }
        pool.shutdown();
    }
    check(!muster::is_worker_process(), "the parent is not a worker");
    return failures == 0 ? 0 : 1;
}
