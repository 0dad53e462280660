// A program killed with SIGKILL leaves no process-pool workers behind: its busy workers get
// SIGKILL through PR_SET_PDEATHSIG, its idle ones read end of file on their channels
// (docs/design/process_pool.md, "Orphans"). With the fork server (the default start method)
// the chain is one longer: the server gets SIGKILL when the program dies, and its workers get
// SIGKILL when the server dies. Both start methods are tested.
//
// The program (tests/process/orphan_parent/) reports its four worker pids on a pipe; the test
// then kills it and waits for every worker (and fork server) to end.
//
// Reaping: spawned workers are the killed program's children, so the test's grandchildren
// (forked ones are one generation further down). A
// grandchild cannot be waited for, and kill(pid, 0) also succeeds on a zombie, so without more
// the test could tell neither when a worker has ended nor whether an ended one is really gone.
// So this test process makes itself a child subreaper (PR_SET_CHILD_SUBREAPER): when the
// program dies, the kernel hands its remaining children to the test, before the program's own
// death is reported to the test by waitpid. From then on every worker is the test's child: a
// pidfd per worker becomes readable when that worker has ended (a blocking poll, no sleeping
// loop), and waitpid reaps it and says how it ended. A worker still running after the bound is
// an orphan the pool failed to stop; the test kills it so that it does not outlive the test.
#include <gtest/gtest.h>

#include "process_info.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

using muster_test::parent_pid;

/// A pidfd for `pid` (Linux 5.3), through syscall(): Debian 12's <sys/pidfd.h> declares
/// pidfd_open without C linkage, so a C++ program cannot link the glibc function.
int open_pidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

/// Kills and reaps the test's children that are still listed, whatever way the test ends.
class children {
public:
    children() = default;
    children(const children&) = delete;
    children& operator=(const children&) = delete;
    ~children() {
        for (pid_t pid : pids_) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    void add(pid_t pid) { pids_.push_back(pid); }
    /// Waits for `pid`, already ended or about to, and stops tracking it; returns its status.
    int reap(pid_t pid) {
        int status = 0;
        pid_t r;
        do r = ::waitpid(pid, &status, 0);
        while (r < 0 && errno == EINTR);
        std::erase(pids_, pid);
        return r == pid ? status : -1;
    }

private:
    std::vector<pid_t> pids_;
};

/// Reads `fd` to end of file; gives up after `limit` without data (the program is stuck).
std::string read_to_end(int fd, int limit_ms) {
    std::string out;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int const r = ::poll(&p, 1, limit_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return out;
        char buf[256];
        auto const n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return out;
        out.append(buf, static_cast<std::size_t>(n));
    }
}

/// Starts the pool program with the write end of a pipe as descriptor 3; returns its pid and
/// the read end.
std::pair<pid_t, int> start_pool_program(const char* start_method) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    char* argv[] = {const_cast<char*>(MUSTER_ORPHAN_PARENT), const_cast<char*>("3"),
                    const_cast<char*>(start_method), nullptr};
    pid_t pid = -1;
    int const rc = ::posix_spawn(&pid, MUSTER_ORPHAN_PARENT, &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[1]);
    if (rc != 0) {
        ::close(p[0]);
        return {-1, -1};
    }
    return {pid, p[0]};
}

/// Waits up to `limit` for `pid` to end (any process: a pidfd works for non-children too).
bool wait_ended(pid_t pid, std::chrono::steady_clock::time_point limit) {
    int const fd = open_pidfd(pid);
    if (fd < 0) {
        ADD_FAILURE() << "pidfd_open(" << pid << "): " << std::strerror(errno);
        return false;
    }
    pollfd p{fd, POLLIN, 0};
    int r;
    do {
        auto const left =
            std::chrono::ceil<std::chrono::milliseconds>(limit - std::chrono::steady_clock::now());
        r = ::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
    } while (r < 0 && errno == EINTR);
    ::close(fd);
    return r == 1;
}

class ProcessPoolOrphans : public ::testing::TestWithParam<const char*> {};

TEST_P(ProcessPoolOrphans, KilledParentLeavesNoWorkers) {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0) << std::strerror(errno);
    children kids;  // declared first: destroyed last, after every other cleanup here

    bool const forked = std::string(GetParam()) == "fork_server";
    auto const [program, report] = start_pool_program(GetParam());
    ASSERT_GT(program, 0) << "cannot start " << MUSTER_ORPHAN_PARENT;
    kids.add(program);
    std::string const text = read_to_end(report, 60'000);
    ::close(report);
    std::vector<pid_t> workers;
    std::istringstream in(text);
    for (pid_t pid; in >> pid;) workers.push_back(pid);
    ASSERT_EQ(workers.size(), 4u) << "the pool program reported: '" << text << "'";
    std::vector<pid_t> servers;  // fork servers: the program's children, the workers' parents
    for (pid_t w : workers) {
        pid_t const parent = parent_pid(w);
        if (forked) {
            ASSERT_EQ(parent_pid(parent), program) << "pid " << w << " is not a worker of the program";
            if (std::find(servers.begin(), servers.end(), parent) == servers.end())
                servers.push_back(parent);
        } else {
            ASSERT_EQ(parent, program) << "pid " << w << " is not a worker of the program";
        }
    }
    ASSERT_EQ(servers.size(), forked ? 1u : 0u);
    // After the program: `kids` reaps the program first, then the servers, then the workers.
    for (pid_t s : servers) kids.add(s);
    for (pid_t w : workers) kids.add(w);

    ASSERT_EQ(::kill(program, SIGKILL), 0);
    int const status = kids.reap(program);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

    // Every worker must end within 20 s of the kill, which is generous: the kernel signals them
    // as the program dies.
    auto const limit = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (pid_t s : servers) {
        // The program is reaped, so its children have been handed to this process.
        EXPECT_EQ(parent_pid(s), ::getpid()) << "fork server " << s << " was not reparented here";
        if (!wait_ended(s, limit)) {
            ADD_FAILURE() << "fork server " << s << " outlived its killed parent by 20 s";
            continue;
        }
        int const st = kids.reap(s);
        // SIGKILL, or status 0 if it read end of file on its channel first.
        EXPECT_TRUE((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
                    (WIFEXITED(st) && WEXITSTATUS(st) == 0))
            << "fork server " << s << " ended with status " << st;
    }
    for (pid_t w : workers) {
        // The program (and the fork server) are reaped: their children were handed to this
        // process.
        EXPECT_EQ(parent_pid(w), ::getpid()) << "worker " << w << " was not reparented here";
        if (!wait_ended(w, limit)) {
            ADD_FAILURE() << "worker " << w << " outlived its killed parent by 20 s";
            continue;  // `kids` kills it
        }
        int const st = kids.reap(w);
        // A busy worker ends by SIGKILL; an idle one by SIGKILL too, or with status 0 if it
        // read end of file on its channel first.
        EXPECT_TRUE((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
                    (WIFEXITED(st) && WEXITSTATUS(st) == 0))
            << "worker " << w << " ended with status " << st;
    }
    // Nothing else of the program is left either.
    pid_t const other = ::waitpid(-1, nullptr, WNOHANG);
    int const wait_errno = errno;
    EXPECT_EQ(other, -1);
    EXPECT_EQ(wait_errno, ECHILD);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ProcessPoolOrphans,
                         ::testing::Values("fork_server", "spawn"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
