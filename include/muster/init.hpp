// muster/init.hpp: muster::init, which turns a process started by a process_pool into a worker.
#pragma once

namespace muster {

/// Call as the first line of main: `int main(int argc, char** argv) { muster::init(argc, argv); ...`
///
/// In a normal run it does nothing and returns at once. In a process that a muster::process_pool
/// started (the same program, re-executed with a marker in argv and the environment), it runs the
/// worker loop and never returns: the process executes the pool's tasks and exits when the pool
/// closes its channel or the parent dies.
///
/// A program whose main does not call init cannot run process-pool tasks: its pools report
/// broken_pool with a message saying so, and the stray copy of main is stopped (a child that
/// reaches a process_pool constructor, or runs past the handshake time, exits at once).
///
/// Thread-compatible: call it once, before starting threads.
void init(int argc, char** argv);

/// Whether this process is a process-pool worker (true only inside tasks and initializers
/// running in a worker).
bool is_worker_process() noexcept;

}  // namespace muster

namespace muster::detail {
/// In a worker process, the file descriptor of its channel to the pool; -1 elsewhere. Only for
/// tests that inject protocol faults; writing to it breaks the worker's protocol.
int worker_channel_fd() noexcept;
}  // namespace muster::detail
