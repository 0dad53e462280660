// Task functions and helpers shared by the process-pool tests.
#pragma once

#include <chrono>
#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

#include <sys/types.h>

#include <muster/process_pool.hpp>

#include "process_info.hpp"

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

namespace ptest {

struct point {
    int x = 0;
    int y = 0;
    std::string label;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(x, y, label);
    }
    friend bool operator==(const point&, const point&) = default;
};

int add(int a, int b);
std::string greet(std::string name);
std::vector<int> doubled(std::vector<int> v);
point moved(point p, int dx);
void nothing();
int fail_with(std::string msg);
int crash(int how);  // 0 segv, 1 abort, 2 exit(3), 3 allocate too much, 4 hang
int my_pid();
/// {x, the worker's pid, ""}: which process ran the call for input x.
point tagged(int x);
int size_of(std::string s);
int square(int x);
int slow_square(int x);
int square_or_throw(int x);
int write_garbage(int mode);  // 0: oversized length, 1: unknown frame kind
int sleep_ms(int ms);
void failing_initializer();

/// Number of child processes of this process (all threads), from /proc.
std::size_t child_count();
/// Number of worker processes of this process's pools: spawned workers are children, forked
/// ones are children of a fork server (a child whose argv[1] is --muster-fork-server).
std::size_t worker_count();
/// Waits up to `within` for the child count to fall to `n`; returns the last count.
std::size_t wait_children(std::size_t n, std::chrono::milliseconds within);
/// Whether a worker that raised SIGSEGV is reported as such: under AddressSanitizer or
/// ThreadSanitizer, the sanitizer's own SIGSEGV handler prints a report and then aborts
/// (abort_on_error=1) or exits with its error status (1 for ASan, 66 for TSan).
bool segv_reported(int signal, int exit_status);
/// MUSTER_STRESS_SCALE, default 1.
int stress_scale();

}  // namespace ptest
