// 04: a TCP echo server whose connections are served by a bounded pool.
//
// The classic Python shape is socketserver's ThreadingMixIn (one thread per connection, no cap)
// or an accept loop that calls executor.submit(handle, conn) on a ThreadPoolExecutor, whose
// queue is unbounded: a flood of clients piles up tasks (and open sockets) without limit.
//
// Here an acceptor thread accepts connections on 127.0.0.1 and submits one task per connection
// to a pool with max_workers = 8 and a queue of 16. With overflow_policy::block a full queue
// makes submit() wait, so the acceptor stops accepting and further clients wait in the kernel's
// listen backlog: at most 8 connections are served at once and at most 16 more are queued (plus
// the one the acceptor holds while it waits), no matter how many clients arrive.
//
// The client side, in the same program, opens 64 concurrent connections from a second pool;
// each sends a few KB of random bytes and checks every byte that comes back. The server counts
// how many connections it serves at once; that peak must never exceed max_workers.
//
// Loopback only, plain POSIX sockets, an ephemeral port.

#include <muster/muster.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t server_workers = 8;
constexpr std::size_t server_queue = 16;
constexpr int client_count = 64;

[[noreturn]] void fail(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// Owns a file descriptor and closes it.
class fd_handle {
public:
    explicit fd_handle(int fd = -1) : fd_(fd) {}
    fd_handle(fd_handle&& o) noexcept : fd_(o.release()) {}
    fd_handle& operator=(fd_handle&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = o.release();
        }
        return *this;
    }
    ~fd_handle() { reset(); }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

// Sends all of buf; MSG_NOSIGNAL turns a peer that went away into EPIPE instead of SIGPIPE.
void send_all(int fd, const unsigned char* buf, std::size_t n) {
    while (n > 0) {
        ssize_t const k = ::send(fd, buf, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            fail("send");
        }
        buf += k;
        n -= static_cast<std::size_t>(k);
    }
}

// A 10 s receive timeout, so that a bug shows up as an error instead of a hang.
void set_receive_timeout(int fd) {
    timeval tv{};
    tv.tv_sec = 10;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) fail("setsockopt");
}

// ---- the server ------------------------------------------------------------------------------

struct server_counters {
    std::atomic<int> active{0};  // connections being served now
    std::atomic<int> peak{0};    // the most ever served at once
    std::atomic<long> connections{0};
    std::atomic<long> bytes{0};
};

// One connection: echo everything until the client closes its side. Runs as a pool task.
void serve_connection(fd_handle conn, server_counters& c) {
    int const now = c.active.fetch_add(1) + 1;
    int seen = c.peak.load();
    while (now > seen && !c.peak.compare_exchange_weak(seen, now)) {
    }
    set_receive_timeout(conn.get());
    unsigned char buf[4096];
    for (;;) {
        ssize_t const k = ::recv(conn.get(), buf, sizeof buf, 0);
        if (k == 0) break;  // the client has sent everything
        if (k < 0) {
            if (errno == EINTR) continue;
            c.active.fetch_sub(1);
            fail("recv (server)");
        }
        send_all(conn.get(), buf, static_cast<std::size_t>(k));
        c.bytes += k;
    }
    ++c.connections;
    c.active.fetch_sub(1);
}  // conn closes here: the client sees the end of the echo

// Accepts until `stop_fd` becomes readable, submitting one pool task per connection.
void accept_loop(int listen_fd, int stop_fd, muster::thread_pool& pool, server_counters& c,
                 std::vector<muster::future<void>>& tasks) {
    for (;;) {
        pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            fail("poll");
        }
        if (fds[1].revents != 0) return;  // asked to stop
        fd_handle conn(::accept(listen_fd, nullptr, nullptr));
        if (conn.get() < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            fail("accept");
        }
        // Blocks while 16 connections are already queued: that is the back-pressure.
        tasks.push_back(pool.submit(
            [&c](fd_handle fd) { serve_connection(std::move(fd), c); }, std::move(conn)));
    }
}

// ---- the client ------------------------------------------------------------------------------

struct client_counters {
    std::atomic<int> active{0};
    std::atomic<int> peak{0};
};

// Connects, sends `size` random bytes, half-closes, and checks the echo byte for byte.
// Returns the number of bytes verified.
std::size_t run_client(std::uint16_t port, int id, client_counters& c) {
    std::mt19937 rng(static_cast<std::uint32_t>(id));
    std::size_t const size = 1024 + rng() % 7168;  // 1 to 8 KB
    std::vector<unsigned char> payload(size);
    for (auto& b : payload) b = static_cast<unsigned char>(rng());

    fd_handle sock(::socket(AF_INET, SOCK_STREAM, 0));
    if (sock.get() < 0) fail("socket");
    set_receive_timeout(sock.get());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        fail("connect");
    int const now = c.active.fetch_add(1) + 1;
    int seen = c.peak.load();
    while (now > seen && !c.peak.compare_exchange_weak(seen, now)) {
    }

    // A few KB fit in the socket buffers, so sending everything before reading cannot deadlock.
    send_all(sock.get(), payload.data(), payload.size());
    ::shutdown(sock.get(), SHUT_WR);  // tells the server we are done sending

    std::vector<unsigned char> echoed;
    unsigned char buf[4096];
    for (;;) {
        ssize_t const k = ::recv(sock.get(), buf, sizeof buf, 0);
        if (k == 0) break;
        if (k < 0) {
            if (errno == EINTR) continue;
            c.active.fetch_sub(1);
            fail("recv (client)");
        }
        echoed.insert(echoed.end(), buf, buf + k);
    }
    c.active.fetch_sub(1);
    if (echoed != payload)
        throw std::runtime_error("client " + std::to_string(id) + ": sent " +
                                 std::to_string(payload.size()) + " bytes, got back " +
                                 std::to_string(echoed.size()) + " that differ");
    return echoed.size();
}

}  // namespace

int main() {
    auto const start = std::chrono::steady_clock::now();

    // Listen on 127.0.0.1 with an ephemeral port chosen by the kernel.
    fd_handle listener(::socket(AF_INET, SOCK_STREAM, 0));
    if (listener.get() < 0) fail("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind");
    if (::listen(listener.get(), 128) != 0) fail("listen");
    socklen_t len = sizeof addr;
    if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        fail("getsockname");
    std::uint16_t const port = ntohs(addr.sin_port);

    // A pipe whose read end wakes the acceptor when main wants it to stop.
    int stop_pipe[2];
    if (::pipe(stop_pipe) != 0) fail("pipe");
    fd_handle stop_read(stop_pipe[0]), stop_write(stop_pipe[1]);

    server_counters server;
    std::vector<muster::future<void>> server_tasks;  // touched only by the acceptor until joined
    muster::thread_pool server_pool({.max_workers = server_workers,
                                     .queue_capacity = server_queue,
                                     .overflow = muster::overflow_policy::block});
    std::atomic<bool> acceptor_failed{false};
    std::thread acceptor([&] {
        try {
            accept_loop(listener.get(), stop_read.get(), server_pool, server, server_tasks);
        } catch (const std::exception& e) {
            std::printf("  acceptor error: %s\n", e.what());
            acceptor_failed = true;
        }
    });
    std::printf("echo server on 127.0.0.1:%u: %zu workers, queue of %zu (overflow: block)\n",
                static_cast<unsigned>(port), server_workers, server_queue);

    // The clients: 64 connections at once, each from its own task.
    client_counters clients;
    std::size_t verified = 0;
    int client_errors = 0;
    {
        muster::thread_pool client_pool({.max_workers = client_count});
        std::vector<muster::future<std::size_t>> replies;
        for (int id = 0; id < client_count; ++id)
            replies.push_back(client_pool.submit(run_client, port, id, std::ref(clients)));
        for (auto& f : muster::as_completed(replies)) {
            try {
                verified += f.result();
            } catch (const std::exception& e) {
                std::printf("  client error: %s\n", e.what());
                ++client_errors;
            }
        }
    }

    // Shut down: stop the acceptor, close the listening socket, let the server pool drain.
    if (::write(stop_write.get(), "x", 1) != 1) fail("write");
    acceptor.join();
    listener.reset();
    server_pool.shutdown();  // waits for every connection task (the destructor would too)
    int server_errors = 0;
    for (auto& t : server_tasks) {
        try {
            t.result();
        } catch (const std::exception& e) {
            std::printf("  server error: %s\n", e.what());
            ++server_errors;
        }
    }
    double const ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();

    std::printf("clients: %d connections, %zu bytes sent and verified, up to %d open at once\n",
                client_count, verified, clients.peak.load());
    std::printf("server:  %ld connections served, %ld bytes echoed, peak %d served at once "
                "(max_workers = %zu)\n",
                server.connections.load(), server.bytes.load(), server.peak.load(),
                server_workers);
    std::printf("finished in %.1f ms\n", ms);

    bool const ok = !acceptor_failed && client_errors == 0 && server_errors == 0 &&
                    server.connections.load() == client_count &&
                    server.bytes.load() == static_cast<long>(verified) &&
                    server.peak.load() >= 1 &&
                    server.peak.load() <= static_cast<int>(server_workers);
    std::printf("%s\n", ok ? "check: every byte echoed, never more than max_workers at once"
                           : "check FAILED");
    return ok ? 0 : 1;
}
