// How a process_pool passes the worker marker to its children (src/process/spawn.cpp writes it,
// worker.cpp reads it). See docs/design/process_pool.md, "Start".
#pragma once

namespace muster::detail {

/// argv[1] of a worker process started with posix_spawn.
inline constexpr const char* worker_argv_marker = "--muster-worker";
/// argv[1] of a pool's fork server (process_pool.md, "Fork server"): it forks the workers.
inline constexpr const char* fork_server_argv_marker = "--muster-fork-server";
/// Environment variable of a worker process: "<channel fd>:<parent pid>:<start timeout ms>".
inline constexpr const char* worker_env_var = "MUSTER_WORKER";
/// The channel's descriptor number in a worker and in a fork server.
inline constexpr int worker_channel_number = 3;
/// Exit status of a child that reached the library without muster::init having been called.
inline constexpr int worker_no_init_status = 97;

/// Called by every process_pool constructor: in a worker whose main did not call muster::init
/// (it is running the user's main instead), tells the parent and exits at once, so a program
/// without init never runs a second copy of its pools.
void refuse_unclaimed_worker() noexcept;

}  // namespace muster::detail
