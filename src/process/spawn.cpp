#include "process/spawn.hpp"

#include <csignal>
#include <cstring>
#include <vector>

#include <spawn.h>

#include "process/worker_env.hpp"

extern char** environ;

namespace muster::detail {

pid_t spawn_self(int channel_fd, const char* role, const std::string& argv0,
                 long start_timeout_ms, int& err) {
    std::string const marker = std::string(worker_env_var) + "=" +
                               std::to_string(worker_channel_number) + ":" +
                               std::to_string(::getpid()) + ":" + std::to_string(start_timeout_ms);
    std::vector<char*> envp;
    for (char** e = environ; e && *e; ++e)  // a stale marker (in a fork server) is replaced
        if (std::strncmp(*e, worker_env_var, std::strlen(worker_env_var)) != 0) envp.push_back(*e);
    envp.push_back(const_cast<char*>(marker.c_str()));
    envp.push_back(nullptr);
    char* argv[] = {const_cast<char*>(argv0.c_str()), const_cast<char*>(role), nullptr};

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, channel_fd, worker_channel_number);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGCHLD}) sigaddset(&dfl, sig);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    err = ::posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return err == 0 ? pid : -1;
}

}  // namespace muster::detail
