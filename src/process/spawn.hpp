// Starting a process of this program as a pool's worker or fork server: posix_spawn of
// /proc/self/exe with the marker in argv and the environment (docs/design/process_pool.md,
// "Start"). Used by the supervisor (process_core.cpp) and by a fork server that cannot fork
// (worker.cpp, Z2).
#pragma once

#include <string>

#include <sys/types.h>

namespace muster::detail {

/// Spawns /proc/self/exe with argv {argv0, role} (role: worker_argv_marker or
/// fork_server_argv_marker), `channel_fd` as its descriptor 3 (worker_channel_number), and
/// MUSTER_WORKER naming this process as the parent and `start_timeout_ms`; an empty signal mask
/// and default SIGTERM, SIGINT, SIGPIPE and SIGCHLD. `channel_fd` must not be 3 (dup2 onto
/// itself would leave it close-on-exec) and is left open. Returns the pid, or -1 with
/// posix_spawn's error in `err`.
pid_t spawn_self(int channel_fd, const char* role, const std::string& argv0,
                 long start_timeout_ms, int& err);

}  // namespace muster::detail
