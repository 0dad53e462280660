// process_info.hpp: small helpers for the process-pool tests (header-only).
#pragma once

#include <fstream>
#include <ostream>
#include <sstream>
#include <string>

#include <sys/types.h>

#include <muster/process_pool.hpp>

namespace muster_test {

/// The parent pid of `pid`, from /proc/<pid>/stat (zombies included), or -1 if it is gone.
inline pid_t parent_pid(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) return -1;
    // "pid (comm) state ppid ...": comm may contain spaces and parentheses; it ends at the last ')'.
    auto const close = stat.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    pid_t ppid = -1;
    rest >> state >> ppid;
    return ppid;
}

}  // namespace muster_test

namespace muster {
/// How GoogleTest prints a start method (in test names, with testing::PrintToStringParamName).
inline void PrintTo(process_start s, std::ostream* os) {
    *os << (s == process_start::spawn ? "spawn" : "fork_server");
}
}  // namespace muster
