// The worker side of muster::process_pool: the bootstrap that runs before main in a spawned
// worker, muster::init, the worker loop and the process-wide table of task functions.
// Protocol: docs/design/process_pool.md.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <memory>
#include <mutex>
#include <string>
#include <typeinfo>
#include <unordered_map>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "muster/detail/remote_call.hpp"
#include "muster/init.hpp"
#include "process/frame.hpp"
#include "process/spawn.hpp"
#include "process/worker_env.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MUSTER_NO_RLIMIT_AS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MUSTER_NO_RLIMIT_AS 1
#endif
#endif

namespace muster::detail {

namespace {

// Written once by the bootstrap before main, read afterwards on the same thread (init) or on
// threads started later: no synchronisation needed.
int g_channel = -1;
bool g_claimed = false;
long g_start_timeout_ms = 10000;  // from the marker: what a fork server passes on (Z2)
// The start_failed(no_init) frame, built before main so the SIGALRM handler only writes.
char g_no_init_frame[256];
std::size_t g_no_init_size = 0;

void write_all(int fd, const char* p, std::size_t n) noexcept {
    while (n > 0) {
        ssize_t const k = ::write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += k;
        n -= static_cast<std::size_t>(k);
    }
}

[[noreturn]] void exit_no_init() noexcept {
    // async-signal-safe: write and _exit only.
    write_all(g_channel, g_no_init_frame, g_no_init_size);
    ::_exit(worker_no_init_status);
}

extern "C" void on_start_alarm(int) { exit_no_init(); }

/// Runs before main (static initialisation of this translation unit) in every process of a
/// program that uses process_pool. In a worker it takes the marker out of the environment (so
/// processes the task code starts are not workers), arranges to die with the parent, and arms a
/// timer that ends a process whose main never calls muster::init.
///
/// It must stay in the translation unit that defines muster::init and refuse_unclaimed_worker()
/// (the process_pool constructor calls it): a program linking the static library muster_process
/// pulls this object file in only through a symbol it references, and every process-pool user
/// references one of those two.
struct worker_bootstrap {
    worker_bootstrap() noexcept {
        const char* v = std::getenv(worker_env_var);
        if (!v) return;
        int fd = -1;
        long ppid = 0, timeout_ms = 0;
        if (std::sscanf(v, "%d:%ld:%ld", &fd, &ppid, &timeout_ms) != 3 || fd < 0) return;
        ::unsetenv(worker_env_var);
        g_channel = fd;
        g_start_timeout_ms = timeout_ms;
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != static_cast<pid_t>(ppid)) ::_exit(1);  // the parent already died

        std::string frame;
        wire::encoder e(frame, wire::kind::start_failed);
        e.u8(static_cast<std::uint8_t>(wire::start_failure::no_init))
            .str("the worker process ran main without muster::init: call "
                 "muster::init(argc, argv) as the first line of main");
        e.finish();
        g_no_init_size = frame.size() < sizeof g_no_init_frame ? frame.size() : 0;
        std::memcpy(g_no_init_frame, frame.data(), g_no_init_size);

        struct sigaction sa {};
        sa.sa_handler = &on_start_alarm;
        ::sigaction(SIGALRM, &sa, nullptr);
        itimerval t{};
        t.it_value.tv_sec = timeout_ms / 1000;
        t.it_value.tv_usec = (timeout_ms % 1000) * 1000;
        ::setitimer(ITIMER_REAL, &t, nullptr);
    }
};
const worker_bootstrap g_bootstrap;

struct function_table {
    std::mutex mu;
    std::unordered_map<std::string, remote_invoker> fns;
};
function_table& table() {
    static auto* t = new function_table;  // leaked: used from static initialisers and exits
    return *t;
}

std::string demangle(const char* name) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                               std::free);
    return status == 0 && out ? std::string(out.get()) : std::string(name);
}

class channel {
public:
    explicit channel(int fd) : fd_(fd), reader_(wire::bootstrap_frame_limit) {}
    void set_limit(std::size_t n) {
        limit_ = n;
        reader_.set_limit(n);
    }
    std::size_t limit() const { return limit_; }
    /// Blocks for the next frame; exits the process when the parent closed the channel or sent
    /// something unreadable (the parent treats either as this worker's failure).
    std::string next() {
        std::string body;
        for (;;) {
            switch (reader_.next(body)) {
                case wire::frame_reader::status::frame:
                    return body;
                case wire::frame_reader::status::malformed:
                    finish(2);
                case wire::frame_reader::status::need_more:
                    break;
            }
            char buf[65536];
            ssize_t const n = ::read(fd_, buf, sizeof buf);
            if (n == 0) finish(0);
            if (n < 0) {
                if (errno == EINTR) continue;
                finish(0);
            }
            reader_.feed(buf, static_cast<std::size_t>(n));
        }
    }
    void send(const std::string& frame) { write_all(fd_, frame.data(), frame.size()); }
    [[noreturn]] static void finish(int status) {
        std::fflush(nullptr);
        ::_exit(status);
    }

private:
    int fd_;
    wire::frame_reader reader_;
    std::size_t limit_ = wire::bootstrap_frame_limit;
};

void send_result_error(channel& ch, std::uint64_t id, wire::outcome oc, const std::string& a,
                       const std::string* b = nullptr) {
    std::string f;
    wire::encoder e(f, wire::kind::result);
    e.u64(id).u8(static_cast<std::uint8_t>(oc)).str(a);
    if (b) e.str(*b);
    e.finish();
    ch.send(f);
}

void run_task(channel& ch, std::uint64_t id, std::string_view fn, std::string_view payload) {
    remote_invoker const inv = find_remote_function(fn);
    if (!inv) {
        send_result_error(ch, id, wire::outcome::unknown_function,
                          "muster::process_pool: no task function named '" + std::string(fn) +
                              "' is registered in the worker process");
        return;
    }
    std::string out;
    wire::encoder e(out, wire::kind::result);
    e.u64(id).u8(static_cast<std::uint8_t>(wire::outcome::value));
    try {
        inv(payload, out);
    } catch (const serialization_error& err) {
        send_result_error(ch, id, wire::outcome::serialization, err.what());
        return;
    } catch (...) {
        std::string type, msg;
        describe_current_exception(type, msg);
        send_result_error(ch, id, wire::outcome::exception, type, &msg);
        return;
    }
    if (e.finish() > ch.limit()) {
        send_result_error(ch, id, wire::outcome::serialization,
                          "muster::process_pool: the serialised result (" +
                              std::to_string(out.size()) +
                              " bytes) exceeds process_pool_options::max_frame_size");
        return;
    }
    ch.send(out);
}

[[noreturn]] void worker_main() {
    // Processes a task starts must not hold the channel open after this worker dies.
    ::fcntl(g_channel, F_SETFD, FD_CLOEXEC);
    channel ch(g_channel);
    // Configuration first (docs/design/process_pool.md, step K2).
    std::string const cfg = ch.next();
    wire::decoder d(cfg);
    if (static_cast<wire::kind>(d.u8()) != wire::kind::config) channel::finish(2);
    std::uint64_t const memory_limit = d.u64();
    std::uint64_t const max_frame = d.u64();
    std::string const name(d.str());
    std::string const initializer(d.str());
    if (!d.ok()) channel::finish(2);
    ch.set_limit(static_cast<std::size_t>(max_frame));
    if (!name.empty()) ::prctl(PR_SET_NAME, name.c_str());
#ifndef MUSTER_NO_RLIMIT_AS
    if (memory_limit > 0) {
        rlimit r{static_cast<rlim_t>(memory_limit), static_cast<rlim_t>(memory_limit)};
        ::setrlimit(RLIMIT_AS, &r);
    }
#else
    (void)memory_limit;
#endif
    if (!initializer.empty()) {
        std::string failure;
        if (remote_invoker const inv = find_remote_function(initializer)) {
            try {
                std::string ignored;
                std::string args;  // an empty tuple
                std::ostringstream os(std::ios::binary);
                {
                    cereal::BinaryOutputArchive ar(os);
                    ar(std::tuple<>{});
                }
                inv(std::move(os).str(), ignored);
            } catch (...) {
                std::string type, msg;
                describe_current_exception(type, msg);
                failure = "the initializer threw " + type + ": " + msg;
            }
        } else {
            failure = "the initializer '" + initializer + "' is not registered in the worker";
        }
        if (!failure.empty()) {
            std::string f;
            wire::encoder e(f, wire::kind::start_failed);
            e.u8(static_cast<std::uint8_t>(wire::start_failure::initializer)).str(failure);
            e.finish();
            ch.send(f);
            channel::finish(3);
        }
    }
    {
        std::string f;
        wire::encoder e(f, wire::kind::ready);
        e.u32(static_cast<std::uint32_t>(::getpid()));
        e.finish();
        ch.send(f);
    }
    for (;;) {
        std::string const body = ch.next();
        wire::decoder t(body);
        switch (static_cast<wire::kind>(t.u8())) {
            case wire::kind::task: {
                std::uint64_t const id = t.u64();
                std::string_view const fn = t.str();
                std::string_view const payload = t.rest();
                if (!t.ok()) channel::finish(2);
                run_task(ch, id, fn, payload);
                break;
            }
            case wire::kind::exit:
                channel::finish(0);
            default:
                channel::finish(2);
        }
    }
}

// ---- the fork server (docs/design/process_pool.md, "Fork server", steps Z1-Z5) ----------------

/// Sends one frame as one SOCK_SEQPACKET message; the parent is gone if that fails.
void server_send(int ctl, const std::string& frame) {
    for (;;) {
        if (::send(ctl, frame.data(), frame.size(), MSG_NOSIGNAL) >= 0) return;
        if (errno != EINTR) ::_exit(0);
    }
}

/// The wait status waitpid would report, rebuilt from waitid's siginfo (Linux encoding).
int wait_status_of(const siginfo_t& info) {
    switch (info.si_code) {
        case CLD_EXITED:
            return (info.si_status & 0xff) << 8;
        case CLD_DUMPED:
            return (info.si_status & 0x7f) | 0x80;
        default:  // CLD_KILLED
            return info.si_status & 0x7f;
    }
}

/// Z3, in the child of fork(): turn into a worker on `channel_fd`.
template <class Children>
[[noreturn]] void become_forked_worker(int channel_fd, int ctl, const Children& siblings,
                                       pid_t server) {
    for (const auto& c : siblings)
        if (c.pidfd >= 0) ::close(c.pidfd);
    ::dup2(channel_fd, worker_channel_number);  // also closes the server's channel if it was there
    ::close(channel_fd);
    if (ctl != worker_channel_number) ::close(ctl);
    g_channel = worker_channel_number;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != server) ::_exit(1);  // the server died before PDEATHSIG was set
    worker_main();
}

/// Threads of this process, from /proc/self/task (0 if it cannot be read).
std::size_t thread_count() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/task")) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n;
}

/// A pool's fork server: a process of this program that reached muster::init and does nothing
/// else, so forking it is cheap (no exec, no dynamic loading, a small address space) and does
/// not depend on the parent's size. Single-threaded, so fork is safe. Workers are its children:
/// it reports their exits to the parent, and keeps each one a zombie (waitid WNOWAIT) until the
/// parent releases it, so a pid the parent signals is never reused meanwhile (Z4).
///
/// A program whose static initialisation started threads makes the server multi-threaded, and
/// forking it could then copy a lock some other thread holds: such a server spawns each worker
/// with posix_spawn instead (slower, never unsafe), with the rest of the protocol unchanged.
[[noreturn]] void fork_server_main(const char* name) {
    bool const threaded = thread_count() != 1;
    int const ctl = g_channel;
    ::fcntl(ctl, F_SETFD, FD_CLOEXEC);
    if (name) ::prctl(PR_SET_NAME, name);
    pid_t const self = ::getpid();
    // Z4 learns of exits from a pidfd per child (readable once it has ended), not from SIGCHLD:
    // a signal can go to any thread that does not block it, including threads the program
    // started before main. Without pidfds (Linux < 5.3) it polls every 5 ms instead.
    struct child {
        pid_t pid;
        int pidfd;  // -1: none, polled
    };
    std::vector<child> running;   // started, exit not reported
    std::vector<pid_t> reported;  // exit reported, kept as a zombie until released
    for (;;) {
        std::vector<pollfd> fds{{ctl, POLLIN, 0}};
        bool polled = false;
        for (const child& c : running) {
            if (c.pidfd >= 0) fds.push_back({c.pidfd, POLLIN, 0});
            else polled = true;
        }
        if (::poll(fds.data(), fds.size(), polled ? 5 : -1) < 0) {
            if (errno == EINTR) continue;
            ::_exit(4);
        }
        // Z4: report exits, keep the zombies.
        for (auto it = running.begin(); it != running.end();) {
            siginfo_t info{};
            if (::waitid(P_PID, static_cast<id_t>(it->pid), &info, WEXITED | WNOHANG | WNOWAIT) ==
                    0 &&
                info.si_pid == it->pid) {
                std::string f;
                wire::encoder e(f, wire::kind::exited);
                e.u32(static_cast<std::uint32_t>(it->pid))
                    .u32(static_cast<std::uint32_t>(wait_status_of(info)));
                e.finish();
                server_send(ctl, f);
                reported.push_back(it->pid);
                if (it->pidfd >= 0) ::close(it->pidfd);
                it = running.erase(it);
            } else {
                ++it;
            }
        }
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[64];
        alignas(cmsghdr) char cbuf[CMSG_SPACE(4 * sizeof(int))];
        iovec iov{buf, sizeof buf};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf;
        m.msg_controllen = sizeof cbuf;
        ssize_t const n = ::recvmsg(ctl, &m, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) ::_exit(0);  // Z5: the parent closed the channel (or died)
        std::vector<int> fds_in;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            std::size_t const k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < k; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                fds_in.push_back(fd);
            }
        }
        auto const body = wire::single_frame(std::string_view(buf, static_cast<std::size_t>(n)));
        bool const truncated = (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
        if (truncated || !body || !wire::valid_server_request(*body)) ::_exit(2);
        wire::decoder d(*body);
        if (static_cast<wire::kind>(d.u8()) == wire::kind::release) {
            auto const pid = static_cast<pid_t>(d.u32());
            for (int fd : fds_in) ::close(fd);
            for (auto it = reported.begin(); it != reported.end(); ++it)
                if (*it == pid) {
                    ::waitpid(pid, nullptr, 0);  // a zombie: returns at once
                    reported.erase(it);
                    break;
                }
            continue;
        }
        // Z2: fork one worker for the channel end that came with the request.
        if (fds_in.size() != 1) ::_exit(2);
        // Z2 for a server that is not single-threaded: spawn the worker (exec'd, as with
        // process_start::spawn) instead of forking; it is still our child, nothing else changes.
        int start_errno = 0;
        pid_t const pid = threaded ? spawn_self(fds_in[0], worker_argv_marker,
                                                name ? name : "muster-worker", g_start_timeout_ms,
                                                start_errno)
                                   : ::fork();
        if (pid == 0) become_forked_worker(fds_in[0], ctl, running, self);
        if (!threaded) start_errno = errno;
        ::close(fds_in[0]);
        std::string f;
        if (pid < 0) {
            wire::encoder e(f, wire::kind::fork_failed);
            e.str(std::string(threaded ? "posix_spawn failed: " : "fork failed: ") +
                  std::strerror(start_errno));
            e.finish();
        } else {
            // A pidfd is close-on-exec from the start (pidfd_open, Linux 5.3); -1: polled.
            running.push_back({pid, static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))});
            wire::encoder e(f, wire::kind::forked);
            e.u32(static_cast<std::uint32_t>(pid));
            e.finish();
        }
        server_send(ctl, f);
    }
}

}  // namespace

bool register_remote_function(std::string_view name, remote_invoker invoker) {
    auto& t = table();
    std::lock_guard lock(t.mu);
    t.fns.emplace(std::string(name), invoker);
    return true;
}

remote_invoker find_remote_function(std::string_view name) noexcept {
    try {
        auto& t = table();
        std::lock_guard lock(t.mu);
        auto it = t.fns.find(std::string(name));
        return it == t.fns.end() ? nullptr : it->second;
    } catch (...) {
        return nullptr;
    }
}

void describe_current_exception(std::string& type_name, std::string& message) {
    try {
        throw;
    } catch (const std::exception& e) {
        type_name = demangle(typeid(e).name());
        message = e.what();
    } catch (...) {
        auto* t = abi::__cxa_current_exception_type();
        type_name = t ? demangle(t->name()) : "unknown exception";
        message = "(not derived from std::exception)";
    }
}

void refuse_unclaimed_worker() noexcept {
    if (g_channel >= 0 && !g_claimed) exit_no_init();
}

int worker_channel_fd() noexcept { return g_claimed ? g_channel : -1; }

}  // namespace muster::detail

namespace muster {

void init(int argc, char** argv) {
    using namespace detail;
    if (g_channel < 0) return;
    bool const server = argc >= 2 && argv && argv[1] &&
                        std::strcmp(argv[1], fork_server_argv_marker) == 0;
    if (!server &&
        (argc < 2 || !argv || !argv[1] || std::strcmp(argv[1], worker_argv_marker) != 0)) {
        // The environment marked this process as a worker, but argv did not: it was not
        // started by a pool (the variable leaked into an unrelated program). Run normally.
        g_channel = -1;
        itimerval off{};
        ::setitimer(ITIMER_REAL, &off, nullptr);
        ::signal(SIGALRM, SIG_DFL);
        return;
    }
    g_claimed = true;
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::signal(SIGALRM, SIG_DFL);
    if (server) fork_server_main(argv[0]);
    worker_main();
}

bool is_worker_process() noexcept { return detail::g_claimed; }

}  // namespace muster
