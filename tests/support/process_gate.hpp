// process_gate.hpp: holding process-pool workers from the test process.
//
// A thread-pool test holds a worker with a latch (futures_support.hpp's blocker). A process-pool
// worker is another process, so the same protocol runs over two named FIFOs in a fresh
// temporary directory, and every wait is a blocking read, never a sleep:
//
//  - `release`: the gate keeps it open for writing. A held task opens it for reading first and
//    then reads it; the read blocks until release() closes the gate's end, which gives every
//    reader end of file at once.
//  - `started`: the gate keeps it open for reading, and open for writing too, so that a read
//    blocks instead of returning end of file while no task has it open. A held task, once its
//    `release` end is open, writes its pid there (4 bytes: a single pipe write, never split or
//    interleaved), so wait_started(n) returns once n tasks hold their workers, with their pids.
//
// Both FIFOs are unlinked as soon as wait_started() returns (every held task has opened them by
// then), so nothing is left in the file system even if the test process is killed. Neither side
// ever blocks in open(): a task whose gate is gone finds no FIFO, or reads end of file, and
// returns at once instead of hanging its worker.
//
// Header-only. A program that submits gated_task to a process pool includes
// <cereal/types/string.hpp> (gated_task takes a std::string).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace muster_test {

namespace gate_detail {

inline constexpr const char* started_name = "/started";
inline constexpr const char* release_name = "/release";

[[noreturn]] inline void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), "process_gate: " + what);
}

inline void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

/// Opens `path` read-only without waiting for a writer, then makes reads blocking.
inline int open_reader(const std::string& path) {
    int const fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

}  // namespace gate_detail

/// The task a process_gate holds a worker with: opens the gate's FIFOs in `dir`, reports its
/// pid, and blocks until the gate is released or gone. Then it returns its pid; with `park`, it
/// never returns instead (a worker busy in a task that does not end). Returns -1 at once if the
/// gate is already gone.
inline int gated_task(std::string dir, bool park) {
    using namespace gate_detail;
    int release = open_reader(dir + release_name);
    if (release < 0) return -1;
    int started = ::open((dir + started_name).c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (started < 0) {
        close_fd(release);
        return -1;
    }
    std::int32_t const pid = static_cast<std::int32_t>(::getpid());
    [[maybe_unused]] auto const written = ::write(started, &pid, sizeof pid);
    close_fd(started);
    for (;;) {  // until end of file: the gate released or gone
        char c;
        auto const k = ::read(release, &c, 1);
        if (k == 0 || (k < 0 && errno != EINTR)) break;
    }
    close_fd(release);
    while (park) ::pause();
    return pid;
}

/// The test-process side: two FIFOs in a new temporary directory that gated_task(dir(), ...)
/// tasks use. Owner-thread only.
class process_gate {
public:
    /// Creates the directory and the FIFOs and opens the gate's ends. Throws std::system_error.
    process_gate() {
        using namespace gate_detail;
        std::string pattern = (std::filesystem::temp_directory_path() / "muster-gate-XXXXXX");
        if (!::mkdtemp(pattern.data())) throw_errno("mkdtemp");
        dir_ = pattern;
        try {
            for (const char* name : {started_name, release_name})
                if (::mkfifo((dir_ + name).c_str(), 0600) != 0) throw_errno("mkfifo");
            started_ = open_reader(dir_ + started_name);
            if (started_ < 0) throw_errno("open started");
            started_writer_ = ::open((dir_ + started_name).c_str(), O_WRONLY | O_CLOEXEC);
            if (started_writer_ < 0) throw_errno("open started for writing");
            // A FIFO opens for writing without waiting only while it has a reader: hold one
            // for the moment of the open.
            int reader = open_reader(dir_ + release_name);
            if (reader < 0) throw_errno("open release");
            release_ = ::open((dir_ + release_name).c_str(), O_WRONLY | O_CLOEXEC);
            int const open_errno = errno;
            close_fd(reader);
            errno = open_errno;
            if (release_ < 0) throw_errno("open release for writing");
        } catch (...) {
            close_all();
            remove();
            throw;
        }
    }
    process_gate(const process_gate&) = delete;
    process_gate& operator=(const process_gate&) = delete;
    /// Releases the held tasks and removes the FIFOs.
    ~process_gate() {
        remove();
        close_all();
    }

    /// The directory to pass to gated_task.
    const std::string& dir() const noexcept { return dir_; }

    /// Blocks until `n` more tasks have started; returns their pids, in start order. Throws
    /// std::runtime_error if none starts for 60 s (a held task failed: the test would
    /// otherwise hang until its CTest timeout, with no message).
    std::vector<int> wait_started(std::size_t n) {
        std::vector<int> pids;
        std::int32_t pid = 0;
        std::size_t got = 0;
        while (pids.size() < n) {
            pollfd p{started_, POLLIN, 0};
            int const r = ::poll(&p, 1, 60'000);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) gate_detail::throw_errno("poll");
            if (r == 0)
                throw std::runtime_error("process_gate: " + std::to_string(pids.size()) + " of " +
                                         std::to_string(n) +
                                         " held tasks started in 60 s; the others failed");
            auto const k = ::read(started_, reinterpret_cast<char*>(&pid) + got, sizeof pid - got);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) gate_detail::throw_errno("read started");
            got += static_cast<std::size_t>(k);
            if (got == sizeof pid) {
                pids.push_back(pid);
                got = 0;
            }
        }
        remove();  // every task that started has both FIFOs open
        return pids;
    }

    /// Lets every held task return (parked ones stay). Idempotent.
    void release() noexcept { gate_detail::close_fd(release_); }

private:
    void close_all() noexcept {
        gate_detail::close_fd(release_);
        gate_detail::close_fd(started_writer_);
        gate_detail::close_fd(started_);
    }
    void remove() noexcept {
        if (removed_) return;
        removed_ = true;
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    std::string dir_;
    bool removed_ = false;
    int started_ = -1;
    int started_writer_ = -1;
    int release_ = -1;
};

}  // namespace muster_test
