// The parent side of muster::process_pool: spawning workers, and the supervisor thread that
// multiplexes every worker's channel. Protocol, states and failure model:
// docs/design/process_pool.md (step names R1..R9 below refer to it).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "muster/process_pool.hpp"
#include "process/frame.hpp"
#include "process/spawn.hpp"
#include "process/worker_env.hpp"
#include "unhandled.hpp"

namespace muster::detail {

namespace {

using ms = std::chrono::milliseconds;

std::string describe_status(int status) {
    if (WIFSIGNALED(status)) {
        int const sig = WTERMSIG(status);
        const char* abbrev = sigabbrev_np(sig);
        return "was killed by signal " + std::to_string(sig) + " (SIG" +
               (abbrev ? abbrev : "?") + ": " + strsignal(sig) + ")";
    }
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    return "ended with wait status " + std::to_string(status);
}

enum class wstate {
    starting,  ///< spawned, configuration sent, waiting for `ready` (R2)
    idle,      ///< ready, no task
    busy,      ///< running `job`
    retiring,  ///< `exit` sent (max_tasks_per_child or shutdown); waiting for it to close
    reaping,   ///< channel closed; waiting for waitpid (SIGKILL after the deadline)
};

struct worker {
    pid_t pid = -1;
    int fd = -1;
    std::size_t index = 0;
    wstate state = wstate::starting;
    std::string out;  // bytes not yet written to the channel
    std::size_t out_off = 0;
    wire::frame_reader in;
    std::optional<remote_job> job;
    std::uint64_t job_id = 0;
    clock::time_point deadline = clock::time_point::max();
    std::size_t tasks_done = 0;
    bool hard_killed = false;
    bool was_starting = false;  // died before the handshake: a start failure (R8)
    // Fork-server workers (Z-steps): the pid comes from the server's `forked` answer (or the
    // worker's `ready`), the exit status from its `exited` report.
    bool forked = false;
    bool orphaned = false;    // its fork server died, so it dies too; nobody reports its exit
    int pending_signal = 0;   // to send as soon as the pid is known

    explicit worker(std::size_t max_frame) : in(max_frame) {}
};

}  // namespace

class process_core final : public remote_stopper, public std::enable_shared_from_this<process_core> {
public:
    explicit process_core(process_pool_options o) : opts_(std::move(o)) {
        refuse_unclaimed_worker();
        if (opts_.max_workers == 0)
            throw invalid_argument(
                "muster::process_pool_options::max_workers is 0; it must be at least 1");
        if (opts_.min_workers > opts_.max_workers)
            throw invalid_argument("muster::process_pool_options::min_workers (" +
                                   std::to_string(opts_.min_workers) + ") exceeds max_workers (" +
                                   std::to_string(opts_.max_workers) + ")");
        if (opts_.max_frame_size < 64)
            throw invalid_argument(
                "muster::process_pool_options::max_frame_size is too small (at least 64 bytes)");
        static std::atomic<std::uint32_t> pools{0};
        // relaxed: only uniqueness matters.
        std::uint32_t const k = pools.fetch_add(1, std::memory_order_relaxed);
        if (opts_.name_prefix.empty()) opts_.name_prefix = "muster-p" + std::to_string(k);
        id_ = next_executor_id();
        register_unhandled_handler(id_, "muster::process_pool '" + opts_.name_prefix + "'",
                                   opts_.on_unhandled_exception);
        wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wake_fd_ < 0) {
            unregister_unhandled_handler(id_);
            throw error(std::string("muster::process_pool: eventfd failed: ") + std::strerror(errno));
        }
    }

    ~process_core() {
        shutdown({.wait = true});
        if (thread_.joinable()) thread_.detach();  // only when destroyed on the supervisor
        ::close(wake_fd_);
        unregister_unhandled_handler(id_);
    }

    /// The supervisor thread holds a reference to the core for as long as it runs: the last
    /// other owner may let go inside a done-callback, which runs on the supervisor, and the
    /// loop must not go on with a destroyed core. The pool's destructor always shuts down, so
    /// the loop ends and this reference goes; when it is the last one, the core is destroyed
    /// on the supervisor itself, which then detaches its own thread (see the destructor).
    void start() {
        thread_ = std::thread([self = shared_from_this()] { self->run(); });
        supervisor_id_ = thread_.get_id();
    }

    std::uint32_t id() const noexcept { return id_; }
    const process_pool_options& options() const noexcept { return opts_; }

    // R1: a submitting thread queues a job and wakes the supervisor. Never blocks on workers.
    void enqueue(remote_job job) {
        std::string broken;
        bool shut;
        {
            std::lock_guard lock(mu_);
            broken = broken_;
            shut = shutdown_;
            if (broken.empty() && !shut) queue_.push_back(std::move(job));
        }
        // A broken pool is reported before the shutdown flag (Python item 64).
        if (!broken.empty()) {
            job.task->release();
            throw broken_pool(broken);
        }
        if (shut) {
            job.task->release();
            throw shutdown_error("muster::process_pool: cannot submit after shutdown() or "
                                 "terminate()");
        }
        wake();
    }

    void stop_remote_task(task_base* t) noexcept override {
        t->add_ref();
        {
            std::lock_guard lock(mu_);
            stop_requests_.push_back(t);
        }
        wake();
    }

    void shutdown(shutdown_options o) {
        std::deque<remote_job> cancelled;
        {
            std::lock_guard lock(mu_);
            shutdown_ = true;
            if (o.cancel_pending) cancelled.swap(queue_);
        }
        for (auto& j : cancelled) {
            j.task->try_cancel();
            j.task->release();
        }
        wake();
        if (o.wait) join();
    }

    void terminate() {
        std::deque<remote_job> cancelled;
        {
            std::lock_guard lock(mu_);
            shutdown_ = true;
            terminate_ = true;
            cancelled.swap(queue_);
        }
        for (auto& j : cancelled) {
            j.task->try_cancel();
            j.task->release();
        }
        wake();
        join();
    }

private:
    void wake() noexcept {
        std::uint64_t one = 1;
        // EAGAIN only when the counter is saturated: the supervisor is awake anyway (Python 99).
        [[maybe_unused]] auto r = ::write(wake_fd_, &one, sizeof one);
    }

    void join() {
        // From a done-callback (on the supervisor): it cannot wait for itself.
        if (std::this_thread::get_id() == supervisor_id_) return;
        std::lock_guard j(join_mu_);
        if (thread_.joinable()) thread_.join();
    }

    // ---- the supervisor thread ---------------------------------------------------------------

    void run() {
        if (!opts_.lazy)
            for (std::size_t i = 0; i < opts_.max_workers; ++i) spawn();
        for (;;) {
            std::vector<task_base*> stops;
            bool shut, term;
            {
                std::lock_guard lock(mu_);
                stops.swap(stop_requests_);
                shut = shutdown_;
                term = terminate_;
            }
            // R6: the future is already cancelled (F7), so whatever kill_worker completes the
            // job with is dropped by try_complete; only the worker matters. A task that finished
            // before its stop request arrived has no busy worker any more: nothing is killed. The
            // reference taken by stop_remote_task keeps the block (and so its address) from
            // being reused by a newer task while the request waits here.
            for (task_base* t : stops) {
                for (auto& w : workers_)
                    if (w->state == wstate::busy && w->job && w->job->task == t)
                        kill_worker(*w, nullptr, false);
                t->release();
            }
            if (term && !terminated_) {  // R9
                terminated_ = true;
                for (auto& w : workers_) {
                    if (w->state == wstate::reaping) continue;
                    kill_worker(*w,
                                std::make_exception_ptr(worker_lost_error(
                                    "muster::process_pool: terminate() killed the worker process "
                                    "(pid " + std::to_string(w->pid) + ") running this task",
                                    SIGKILL, -1)),
                                true);
                }
            }
            check_deadlines();
            reap();
            if (!term) {
                dispatch();
                spawn_as_needed(shut);
            }
            if (shut) {
                bool queued;
                {
                    std::lock_guard lock(mu_);
                    queued = !queue_.empty();
                }
                bool busy = false;
                for (auto& w : workers_) busy |= w->state == wstate::busy;
                if (!queued && !busy) {
                    for (auto& w : workers_) {  // R7: retire the rest
                        if (w->state == wstate::idle) retire(*w);
                        else if (w->state == wstate::starting) kill_worker(*w, nullptr, true);
                    }
                    if (workers_.empty()) break;
                }
            }
            poll_once();
        }
        close_server();
    }

    void spawn_as_needed(bool shut) {
        std::size_t queued;
        bool broken;
        {
            std::lock_guard lock(mu_);
            queued = queue_.size();
            broken = !broken_.empty();
        }
        if (broken) return;
        std::size_t idle = 0, starting = 0;
        for (auto& w : workers_) {
            idle += w->state == wstate::idle;
            starting += w->state == wstate::starting;
        }
        std::size_t live = workers_.size();
        // Grow before queueing builds up: one new worker per queued job no idle or starting
        // worker will take, up to max_workers processes (reaping ones included, W11).
        while (queued > idle + starting && live < opts_.max_workers) {
            if (!spawn()) return;
            ++starting;
            ++live;
        }
        if (!shut && started_any_)
            while (live < opts_.min_workers) {
                if (!spawn()) return;
                ++live;
            }
    }

    /// spawn_self with `child_end` (closed here) as the child's descriptor 3.
    pid_t spawn_program(int child_end, const char* role, const std::string& argv0, int& err) {
        if (child_end == worker_channel_number) {  // dup2 onto itself would keep CLOEXEC
            int const moved = ::fcntl(child_end, F_DUPFD_CLOEXEC, 10);
            ::close(child_end);
            child_end = moved;
        }
        pid_t const pid = spawn_self(child_end, role, argv0, opts_.start_timeout.count(), err);
        ::close(child_end);
        return pid;
    }

    // R2: start one worker: a fork request to the pool's fork server (Z1), or posix_spawn of
    // /proc/self/exe (start_method spawn). The configuration frame is queued either way.
    bool spawn() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            break_pool(std::string("muster::process_pool: socketpair failed: ") + std::strerror(errno));
            return false;
        }
        std::size_t const index = next_index_++;
        std::string const name = opts_.name_prefix + "_" + std::to_string(index);
        auto w = std::make_unique<worker>(opts_.max_frame_size);
        if (opts_.start_method == process_start::fork_server) {
            if (!ensure_server()) {
                ::close(sv[0]);
                ::close(sv[1]);
                return false;
            }
            w->forked = true;
            std::string f;
            wire::encoder e(f, wire::kind::fork);
            e.finish();
            srv_out_.push_back({std::move(f), sv[1]});
            srv_awaiting_.push_back(w.get());
        } else {
            int err = 0;
            pid_t const pid = spawn_program(sv[1], worker_argv_marker, name, err);
            if (pid < 0) {
                ::close(sv[0]);
                break_pool("muster::process_pool: cannot start a worker process (posix_spawn of "
                           "/proc/self/exe failed: " + std::string(std::strerror(err)) + ")");
                return false;
            }
            w->pid = pid;
        }
        ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);
        w->fd = sv[0];
        w->index = index;
        w->deadline = clock::now() + opts_.start_timeout;
        wire::encoder e(w->out, wire::kind::config);
        e.u64(opts_.memory_limit)
            .u64(opts_.max_frame_size)
            .str(name)
            .str(opts_.initializer ? std::string_view(opts_.initializer->name) : std::string_view());
        e.finish();
        workers_.push_back(std::move(w));
        started_any_ = true;
        // Send the configuration now (the socket buffer takes it), not at the next poll: the
        // worker starts up while the next ones are spawned, instead of waiting for all of them.
        worker& added = *workers_.back();
        flush_server();
        flush(added);
        return true;
    }

    // ---- the fork server (Z-steps) -------------------------------------------------------------

    /// Z1: the pool's fork server, spawned at the first worker start (and after it died).
    bool ensure_server() {
        if (srv_fd_ >= 0) return true;
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
            break_pool(std::string("muster::process_pool: socketpair failed: ") + std::strerror(errno));
            return false;
        }
        int err = 0;
        pid_t const pid = spawn_program(sv[1], fork_server_argv_marker, opts_.name_prefix + "_fs", err);
        if (pid < 0) {
            ::close(sv[0]);
            break_pool("muster::process_pool: cannot start the pool's fork server (posix_spawn of "
                       "/proc/self/exe failed: " + std::string(std::strerror(err)) + ")");
            return false;
        }
        ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);
        srv_fd_ = sv[0];
        srv_pid_ = pid;
        return true;
    }

    void flush_server() {
        while (srv_fd_ >= 0 && !srv_out_.empty()) {
            server_message& m = srv_out_.front();
            iovec iov{m.frame.data(), m.frame.size()};
            msghdr h{};
            h.msg_iov = &iov;
            h.msg_iovlen = 1;
            alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
            if (m.fd >= 0) {
                h.msg_control = cbuf;
                h.msg_controllen = sizeof cbuf;
                cmsghdr* c = CMSG_FIRSTHDR(&h);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                std::memcpy(CMSG_DATA(c), &m.fd, sizeof(int));
            }
            ssize_t const n = ::sendmsg(srv_fd_, &h, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // POLLOUT resumes
            if (n < 0) {
                server_lost();
                return;
            }
            if (m.fd >= 0) ::close(m.fd);  // the server has its copy
            srv_out_.pop_front();
        }
    }

    void send_release(pid_t pid) {
        std::string f;
        wire::encoder e(f, wire::kind::release);
        e.u32(static_cast<std::uint32_t>(pid));
        e.finish();
        srv_out_.push_back({std::move(f), -1});
        flush_server();
    }

    /// Z2: a forked worker's pid is known (from the server's `forked`, or from its `ready` if
    /// that came first); a signal requested meanwhile is sent now.
    static void set_pid(worker& w, pid_t pid) {
        w.pid = pid;
        if (w.pending_signal) ::kill(pid, w.pending_signal);
        w.pending_signal = 0;
    }

    /// Sets the pid of the oldest worker whose fork request is unanswered (Z2).
    void on_forked(pid_t pid) {
        if (srv_awaiting_.empty()) return;
        worker& w = *srv_awaiting_.front();
        srv_awaiting_.pop_front();
        set_pid(w, pid);
    }

    void on_server_readable() {
        for (;;) {
            char buf[1024];
            ssize_t const n = ::recv(srv_fd_, buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n <= 0) {
                server_lost();
                return;
            }
            auto const body = wire::single_frame(std::string_view(buf, static_cast<std::size_t>(n)));
            if (!body || !wire::valid_server_frame(*body)) {
                server_lost();
                return;
            }
            wire::decoder d(*body);
            switch (static_cast<wire::kind>(d.u8())) {
                case wire::kind::forked:
                    on_forked(static_cast<pid_t>(d.u32()));
                    break;
                case wire::kind::exited: {
                    auto const pid = static_cast<pid_t>(d.u32());
                    srv_exits_[pid] = static_cast<int>(d.u32());
                    break;
                }
                case wire::kind::fork_failed: {
                    std::string const why(d.str());
                    if (!srv_awaiting_.empty()) {
                        worker& w = *srv_awaiting_.front();
                        srv_awaiting_.pop_front();
                        w.orphaned = true;  // there is no process to wait for
                        on_channel_closed(w);
                    }
                    break_pool("muster::process_pool: cannot start a worker process (the pool's "
                               "fork server: " + why + ")");
                    break;
                }
                default:  // start_failed: the server ran main without muster::init
                    break_pool(no_init_message());
                    server_lost();
                    return;
            }
        }
    }

    /// Closes the server's channel and the worker channel ends that were waiting to be sent.
    void close_server_channel() {
        ::close(srv_fd_);
        srv_fd_ = -1;
        for (auto& m : srv_out_)
            if (m.fd >= 0) ::close(m.fd);
        srv_out_.clear();
    }

    /// The fork server's channel closed or broke: the server is dead (or is killed now), and so
    /// are its workers, through PR_SET_PDEATHSIG; their exits are never reported, so they leave
    /// `workers_` as lost once their channels close. The next worker start spawns a new server.
    void server_lost() {
        if (srv_fd_ < 0) return;
        close_server_channel();
        int status = 0;
        pid_t r = ::waitpid(srv_pid_, &status, WNOHANG);
        if (r == 0) {
            ::kill(srv_pid_, SIGKILL);
            do r = ::waitpid(srv_pid_, &status, 0);
            while (r < 0 && errno == EINTR);
        }
        srv_pid_ = -1;
        srv_exits_.clear();
        srv_awaiting_.clear();
        for (auto& w : workers_) {
            if (!w->forked || w->orphaned) continue;
            w->orphaned = true;
            if (w->pid <= 0 && w->state != wstate::reaping) on_channel_closed(*w);
        }
        if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == worker_no_init_status)
            break_pool(no_init_message());
    }

    /// Z5: at the end of the supervisor, the server sees end of file and exits.
    void close_server() {
        if (srv_fd_ < 0) return;
        close_server_channel();
        auto const until = clock::now() + opts_.kill_grace + ms(1000);
        int status = 0;
        for (;;) {
            pid_t const r = ::waitpid(srv_pid_, &status, WNOHANG);
            if (r != 0 && !(r < 0 && errno == EINTR)) break;
            if (clock::now() >= until) {
                ::kill(srv_pid_, SIGKILL);
                while (::waitpid(srv_pid_, &status, 0) < 0 && errno == EINTR) {
                }
                break;
            }
            ::poll(nullptr, 0, 1);
        }
        srv_pid_ = -1;
    }

    /// Sends `sig` to worker `w`, now or as soon as its pid is known. An orphaned worker is not
    /// signalled: its pid may already belong to another process.
    void signal_worker(worker& w, int sig) {
        if (w.orphaned) return;
        if (w.pid > 0) ::kill(w.pid, sig);
        else if (w.pending_signal != SIGKILL) w.pending_signal = sig;
    }

    // R3: hand queued jobs to idle workers; a job whose future was cancelled is dropped here, so
    // a task is `running` only once it is on its way to a worker (Python weakness W7 fixed).
    void dispatch() {
        for (auto& wp : workers_) {
            worker& w = *wp;
            if (w.state != wstate::idle) continue;
            std::optional<remote_job> job;
            {
                std::lock_guard lock(mu_);
                while (!queue_.empty()) {
                    remote_job j = std::move(queue_.front());
                    queue_.pop_front();
                    if (j.task->try_start()) {
                        job.emplace(std::move(j));
                        break;
                    }
                    j.task->release();  // cancelled while queued: never dispatched
                }
            }
            if (!job) return;
            w.job_id = ++job_seq_;
            wire::encoder e(w.out, wire::kind::task);
            e.u64(w.job_id).str(job->function).bytes(job->payload);
            e.finish();
            job->payload = std::string();  // the worker has its copy (Python item 71)
            auto const timeout = job->timeout ? job->timeout : opts_.task_timeout;
            w.deadline = timeout ? clock::now() + *timeout : clock::time_point::max();
            w.job = std::move(job);
            w.state = wstate::busy;
            flush(w);
        }
    }

    void finish_job(remote_job& job, std::exception_ptr err, std::string_view value) {
        if (err) {
            if (job.post) report_unhandled(id_, err, "a posted task failed");
            job.task->ops_->fail(job.task, std::move(err));
        } else {
            job.deliver(job.task, value);
        }
        job.task->release();
    }

    /// Stops worker `w` now: fails its job with `err` (if any), signals it (SIGKILL if hard,
    /// else SIGTERM with SIGKILL after kill_grace) and waits for it in `reaping` (R5).
    void kill_worker(worker& w, std::exception_ptr err, bool hard) {
        if (w.job) {
            finish_job(*w.job, err ? err
                                   : std::make_exception_ptr(worker_lost_error(
                                         "muster::process_pool: the worker was stopped", 0, -1)),
                       {});
            w.job.reset();
        }
        signal_worker(w, hard ? SIGKILL : SIGTERM);
        w.hard_killed = hard;
        close_channel(w);
        w.state = wstate::reaping;
        w.deadline = clock::now() + (hard ? ms(5000) : opts_.kill_grace);
    }

    void retire(worker& w) {
        wire::encoder e(w.out, wire::kind::exit);
        e.finish();
        w.state = wstate::retiring;
        w.deadline = clock::now() + opts_.kill_grace + ms(1000);
        flush(w);
    }

    void close_channel(worker& w) {
        if (w.fd >= 0) ::close(w.fd);
        w.fd = -1;
        w.out.clear();
        w.out_off = 0;
    }

    /// The channel reported end of file or an error: the worker is gone or going (R8).
    void on_channel_closed(worker& w) {
        if (w.state == wstate::reaping) return;
        w.was_starting = w.state == wstate::starting;
        close_channel(w);
        w.state = wstate::reaping;
        w.deadline = clock::now() + ms(2000);  // then SIGKILL: it closed its channel
    }

    void check_deadlines() {
        auto const now = clock::now();
        for (auto& wp : workers_) {
            worker& w = *wp;
            if (now < w.deadline) continue;
            switch (w.state) {
                case wstate::starting:
                    kill_worker(w, nullptr, true);
                    break_pool("muster::process_pool: a worker process did not answer the start "
                               "handshake within " + std::to_string(opts_.start_timeout.count()) +
                               " ms; main must call muster::init(argc, argv) as its first line "
                               "(or raise process_pool_options::start_timeout)");
                    break;
                case wstate::busy: {  // R5: task timeout
                    auto const t = w.job->timeout ? *w.job->timeout : *opts_.task_timeout;
                    kill_worker(w,
                                std::make_exception_ptr(timeout_error(
                                    "muster::process_pool: the task ran longer than its timeout "
                                    "of " + std::to_string(t.count()) + " ms; its worker process "
                                    "(pid " + std::to_string(w.pid) + ") was killed and replaced")),
                                false);
                    break;
                }
                case wstate::retiring:
                    kill_worker(w, nullptr, true);
                    break;
                case wstate::reaping:
                    if (!w.hard_killed) {
                        signal_worker(w, SIGKILL);
                        w.hard_killed = true;
                    }
                    w.deadline = clock::time_point::max();
                    break;
                case wstate::idle:
                    w.deadline = clock::time_point::max();
                    break;
            }
        }
    }

    /// R8: collects exited workers; a job still attached fails with worker_lost_error.
    void reap() {
        for (auto it = workers_.begin(); it != workers_.end();) {
            worker& w = **it;
            if (w.state != wstate::reaping) {
                ++it;
                continue;
            }
            int status = 0;
            pid_t r = -1;
            if (!w.forked) {
                r = ::waitpid(w.pid, &status, WNOHANG);
                if (r == 0 || (r < 0 && errno == EINTR)) {
                    ++it;
                    continue;
                }
            } else if (!w.orphaned) {  // Z4: the fork server reports the exit
                auto const e = w.pid > 0 ? srv_exits_.find(w.pid) : srv_exits_.end();
                if (e == srv_exits_.end()) {
                    ++it;
                    continue;
                }
                status = e->second;
                r = w.pid;
                srv_exits_.erase(e);
                send_release(w.pid);
            }
            std::string const how = r > 0            ? describe_status(status)
                                    : w.forked       ? "was lost with the pool's fork server, which died"
                                                     : "could not be waited for";
            if (w.job) {
                int const sig = r > 0 && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
                int const code = r > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                finish_job(*w.job,
                           std::make_exception_ptr(worker_lost_error(
                               "muster::process_pool: the worker process (pid " +
                               std::to_string(w.pid) + ") running this task " + how +
                               "; the pool started a replacement", sig, code)),
                           {});
                w.job.reset();
            }
            if (w.was_starting) {
                if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == worker_no_init_status)
                    break_pool(no_init_message());
                else if (++start_failures_ >= 3)
                    break_pool("muster::process_pool: worker processes end before the start "
                               "handshake (the last one " + how + "); main must call "
                               "muster::init(argc, argv) as its first line");
            }
            it = workers_.erase(it);
        }
    }

    static std::string no_init_message() {
        return "muster::process_pool: the worker processes run main without calling "
               "muster::init: call muster::init(argc, argv) as the first line of main";
    }

    /// The pool cannot start workers: every queued future fails with its own broken_pool, and
    /// later submits throw one (R8).
    void break_pool(std::string msg) {
        std::deque<remote_job> q;
        {
            std::lock_guard lock(mu_);
            if (!broken_.empty()) return;
            broken_ = msg;
            q.swap(queue_);
        }
        for (auto& j : q) {
            if (j.task->try_start()) finish_job(j, std::make_exception_ptr(broken_pool(msg)), {});
            else j.task->release();
        }
        for (auto& w : workers_)
            if (w->state == wstate::starting) kill_worker(*w, nullptr, true);
    }

    void flush(worker& w) {
        while (w.fd >= 0 && w.out_off < w.out.size()) {
            ssize_t const n = ::send(w.fd, w.out.data() + w.out_off, w.out.size() - w.out_off,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                w.out_off += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;  // POLLOUT will resume it (R4: never block on one worker)
            } else {
                on_channel_closed(w);
                return;
            }
        }
        if (w.out_off == w.out.size()) {
            w.out.clear();
            w.out_off = 0;
        }
    }

    void on_readable(worker& w) {
        char buf[65536];
        bool eof = false;
        for (;;) {
            ssize_t const n = ::recv(w.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                w.in.feed(buf, static_cast<std::size_t>(n));
                if (static_cast<std::size_t>(n) < sizeof buf) break;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            eof = true;
            break;
        }
        std::string body;
        for (;;) {
            auto const st = w.in.next(body);
            if (st == wire::frame_reader::status::need_more) break;
            if (st == wire::frame_reader::status::malformed || !wire::valid_worker_frame(body)) {
                protocol_failure(w, st == wire::frame_reader::status::malformed
                                        ? "sent an oversized or empty frame"
                                        : "sent a malformed frame");
                return;
            }
            if (!on_frame(w, body)) return;
        }
        if (eof) on_channel_closed(w);
    }

    void protocol_failure(worker& w, const std::string& what) {
        bool const starting = w.state == wstate::starting;
        kill_worker(w,
                    std::make_exception_ptr(worker_lost_error(
                        "muster::process_pool: the worker process (pid " + std::to_string(w.pid) +
                            ") running this task " + what + "; it was killed and replaced",
                        SIGKILL, -1)),
                    true);
        if (starting && ++start_failures_ >= 3)
            break_pool("muster::process_pool: worker processes break the start handshake (" +
                       what + ")");
    }

    /// Handles one validated frame; false if the worker was stopped.
    bool on_frame(worker& w, const std::string& body) {
        wire::decoder d(body);
        switch (static_cast<wire::kind>(d.u8())) {
            case wire::kind::ready: {
                if (w.state != wstate::starting) break;
                auto const pid = static_cast<pid_t>(d.u32());
                if (w.forked && w.pid <= 0 && !w.orphaned && pid > 0) set_pid(w, pid);
                w.state = wstate::idle;
                w.deadline = clock::time_point::max();
                start_failures_ = 0;
                return true;
            }
            case wire::kind::result: {
                std::uint64_t const id = d.u64();
                if (w.state != wstate::busy || id != w.job_id || !w.job) break;
                auto const oc = static_cast<wire::outcome>(d.u8());
                remote_job job = std::move(*w.job);
                w.job.reset();
                switch (oc) {
                    case wire::outcome::value:
                        finish_job(job, nullptr, d.rest());
                        break;
                    case wire::outcome::exception: {
                        std::string type(d.str());
                        std::string msg(d.str());
                        finish_job(job, std::make_exception_ptr(remote_error(type, msg)), {});
                        break;
                    }
                    case wire::outcome::serialization:
                        finish_job(job, std::make_exception_ptr(serialization_error(std::string(d.str()))), {});
                        break;
                    case wire::outcome::unknown_function:
                        finish_job(job, std::make_exception_ptr(error(std::string(d.str()))), {});
                        break;
                }
                w.state = wstate::idle;
                w.deadline = clock::time_point::max();
                if (opts_.max_tasks_per_child > 0 && ++w.tasks_done >= opts_.max_tasks_per_child)
                    retire(w);  // R7: a replacement starts when work needs it
                return true;
            }
            case wire::kind::start_failed: {
                if (w.state != wstate::starting) break;
                auto const why = static_cast<wire::start_failure>(d.u8());
                std::string const msg(d.str());
                kill_worker(w, nullptr, true);
                break_pool(why == wire::start_failure::no_init
                               ? no_init_message()
                               : "muster::process_pool: a worker could not start: " + msg);
                return false;
            }
            default:
                break;
        }
        protocol_failure(w, "sent an unexpected frame");
        return false;
    }

    void poll_once() {
        std::vector<pollfd> fds;
        std::vector<worker*> owners;
        fds.push_back({wake_fd_, POLLIN, 0});
        owners.push_back(nullptr);
        // Z2/Z4: the fork server's answers and exit reports (second entry, when it runs).
        bool const server = srv_fd_ >= 0;
        if (server) {
            fds.push_back({srv_fd_, static_cast<short>(POLLIN | (srv_out_.empty() ? 0 : POLLOUT)), 0});
            owners.push_back(nullptr);
        }
        auto next = clock::time_point::max();
        bool reaping = false;
        for (auto& wp : workers_) {
            worker& w = *wp;
            next = std::min(next, w.deadline);
            if (w.state == wstate::reaping) {
                reaping |= !w.forked;  // a forked worker's exit arrives as a message
                continue;
            }
            if (w.fd < 0) continue;
            short ev = POLLIN;
            if (w.out_off < w.out.size()) ev |= POLLOUT;
            fds.push_back({w.fd, ev, 0});
            owners.push_back(&w);
        }
        int timeout = -1;
        if (next != clock::time_point::max()) {
            auto const left = std::chrono::ceil<ms>(next - clock::now()).count();
            timeout = static_cast<int>(std::clamp<long long>(left, 0, 1000));
        }
        if (reaping) timeout = timeout < 0 ? 5 : std::min(timeout, 5);  // waitpid polling
        int const n = ::poll(fds.data(), fds.size(), timeout);
        if (n <= 0) return;
        if (fds[0].revents & POLLIN) {
            std::uint64_t v;
            [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
        }
        std::size_t first = 1;
        if (server) {
            first = 2;
            if (fds[1].revents & POLLOUT) flush_server();
            if (srv_fd_ >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) on_server_readable();
        }
        for (std::size_t i = first; i < fds.size(); ++i) {
            worker& w = *owners[i];
            if (w.fd < 0 || w.state == wstate::reaping) continue;
            if (fds[i].revents & POLLOUT) flush(w);
            if (w.fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) on_readable(w);
        }
    }

    process_pool_options opts_;
    std::uint32_t id_ = 0;
    int wake_fd_ = -1;
    std::thread thread_;              // joined under join_mu_
    std::thread::id supervisor_id_;  // written by start(), before the core is shared
    std::mutex join_mu_;

    // Shared with submitting threads, guarded by mu_.
    std::mutex mu_;
    std::deque<remote_job> queue_;         // submitted, not yet dispatched
    std::vector<task_base*> stop_requests_;  // request_stop() on running tasks (one ref each)
    bool shutdown_ = false;
    bool terminate_ = false;
    std::string broken_;  // non-empty once broken: the reason

    // Supervisor thread only.
    std::vector<std::unique_ptr<worker>> workers_;
    std::uint64_t job_seq_ = 0;
    std::size_t next_index_ = 0;
    std::size_t start_failures_ = 0;  // consecutive workers that died before `ready`
    bool started_any_ = false;
    bool terminated_ = false;

    // The fork server (Z-steps), supervisor thread only.
    struct server_message {
        std::string frame;
        int fd = -1;  // a worker's channel end, passed with the message and then closed here
    };
    pid_t srv_pid_ = -1;
    int srv_fd_ = -1;                       // SOCK_SEQPACKET, non-blocking; -1: no server
    std::deque<server_message> srv_out_;    // not yet sent (the socket was full)
    std::deque<worker*> srv_awaiting_;      // fork requests in order, not yet answered
    std::unordered_map<pid_t, int> srv_exits_;  // reported exits not yet collected by reap()
};

std::shared_ptr<process_core> make_process_core(process_pool_options options) {
    auto core = std::make_shared<process_core>(std::move(options));
    core->start();
    return core;
}
std::uint32_t process_pool_id(const process_core& core) noexcept { return core.id(); }
std::size_t process_max_workers(const process_core& core) noexcept {
    return core.options().max_workers;
}
std::size_t process_max_frame(const process_core& core) noexcept {
    return core.options().max_frame_size;
}
std::weak_ptr<remote_stopper> process_stopper(process_core& core) noexcept {
    return std::static_pointer_cast<remote_stopper>(core.shared_from_this());
}
void process_enqueue(process_core& core, remote_job job) { core.enqueue(std::move(job)); }
void process_shutdown(process_core& core, shutdown_options options) { core.shutdown(options); }
void process_terminate(process_core& core) { core.terminate(); }

[[noreturn]] void throw_process_map_timeout(std::size_t in_flight) {
    throw timeout_error("muster::process_pool::map: the timeout passed before this element's "
                        "task finished; it and the " +
                        std::to_string(in_flight > 0 ? in_flight - 1 : 0) +
                        " other chunks in flight were cancelled if not yet dispatched, and the "
                        "iteration ends; use a longer process_map_options::timeout");
}

std::size_t process_map_buffersize(const process_map_options& options, std::size_t max_workers) {
    if (options.chunksize && *options.chunksize == 0)
        throw invalid_argument(
            "muster::process_map_options::chunksize is 0; it must be at least 1 (leave it out "
            "for an automatic size)");
    if (!options.buffersize) return 2 * max_workers;
    if (*options.buffersize == 0)
        throw invalid_argument(
            "muster::process_map_options::buffersize is 0; it must be at least 1 (leave it out "
            "for 2 * max_workers)");
    return *options.buffersize;
}

}  // namespace muster::detail
