// The program that tests/process/orphan_test.cpp kills: it runs a process pool of four workers,
// keeps two of them busy in tasks that never end and lets the other two go idle, writes the
// four worker pids to the descriptor named by argv[1] (as text, then closes it), and waits to be
// killed. argv[2] is the start method: fork_server or spawn.
#include <cereal/types/string.hpp>
#include <cstddef>
#include <cstdlib>
#include <muster/process.hpp>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "process_gate.hpp"

int main(int argc, char** argv) {
    muster::init(argc, argv);
    if (argc != 3) return 2;
    int const report = std::atoi(argv[1]);
    auto const method = std::string(argv[2]) == "spawn" ? muster::process_start::spawn
                                                         : muster::process_start::fork_server;
    // The workers must not hold the report pipe: the test reads it to end of file.
    if (::fcntl(report, F_SETFD, FD_CLOEXEC) != 0) return 2;

    constexpr std::size_t workers = 4;
    constexpr std::size_t busy = 2;
    muster::process_pool pool({.max_workers = workers, .start_method = method});
    muster_test::process_gate gate;
    std::vector<muster::future<int>> held;
    // Every worker runs one of these at the same time, so each task has a worker of its own.
    for (std::size_t i = 0; i < workers; ++i)
        held.push_back(pool.submit<&muster_test::gated_task>(gate.dir(), i < busy));
    std::vector<int> const pids = gate.wait_started(workers);
    gate.release();
    for (std::size_t i = busy; i < workers; ++i) held[i].wait();  // those workers are idle now

    std::string line;
    for (int pid : pids) line += std::to_string(pid) + " ";
    line += "\n";
    for (std::size_t off = 0; off < line.size();) {
        auto const n = ::write(report, line.data() + off, line.size() - off);
        if (n <= 0) return 2;
        off += static_cast<std::size_t>(n);
    }
    ::close(report);
    for (;;) ::pause();
}
