// The wire format between a process_pool and its workers: length-prefixed frames over one
// socketpair per worker. See docs/design/process_pool.md, "Frames".
//
// frame   = u32 length (little-endian, 1 <= length <= max_frame_size) + `length` body bytes
// body    = u8 kind + fields; integers little-endian, strings as u32 length + bytes
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace muster::detail::wire {

inline constexpr std::size_t header_size = 4;
/// Frames the worker reads before it knows the pool's limit (the configuration frame).
inline constexpr std::size_t bootstrap_frame_limit = std::size_t{1} << 20;

enum class kind : std::uint8_t {
    // parent -> worker
    config = 1,  ///< u64 memory_limit, u64 max_frame_size, str name, str initializer
    task = 2,    ///< u64 job id, str function, bytes payload (rest of the body)
    exit = 3,    ///< no fields: finish and exit
    // worker -> parent
    ready = 10,         ///< u32 pid: the handshake answer, after the initializer ran
    result = 11,        ///< u64 job id, u8 outcome, then per outcome (see below)
    start_failed = 12,  ///< u8 start_failure, str message
    // parent -> fork server: one message each on its SOCK_SEQPACKET channel (process_pool.md,
    // "Fork server", Z-steps)
    fork = 20,     ///< no fields; carries the new worker's channel end as SCM_RIGHTS
    release = 21,  ///< u32 pid: the parent has collected this worker's exit; reap it
    // fork server -> parent
    forked = 25,       ///< u32 pid of the worker started for the oldest unanswered `fork`
    fork_failed = 26,  ///< str message: the oldest unanswered `fork` failed
    exited = 27,       ///< u32 pid, u32 wait status (as waitpid reports it)
};

/// outcome of a result frame: value -> bytes payload; exception -> str type, str message;
/// serialization / unknown_function -> str message.
enum class outcome : std::uint8_t { value = 0, exception = 1, serialization = 2, unknown_function = 3 };

enum class start_failure : std::uint8_t { no_init = 1, initializer = 2 };

/// Builds one frame in a string (appending to whatever the string already holds).
class encoder {
public:
    encoder(std::string& out, kind k);
    encoder& u8(std::uint8_t v);
    encoder& u32(std::uint32_t v);
    encoder& u64(std::uint64_t v);
    encoder& str(std::string_view s);
    encoder& bytes(std::string_view s);  ///< raw, to the end of the body
    /// Writes the length prefix; returns the body size.
    std::size_t finish();

private:
    std::string& out_;
    std::size_t start_;
};

/// Reads the fields of one frame body. Every read is bounds-checked: after a failed read ok()
/// is false and later reads return zero values, so a malformed body never reads out of range.
class decoder {
public:
    explicit decoder(std::string_view body) noexcept : rest_(body) {}
    std::uint8_t u8() noexcept;
    std::uint32_t u32() noexcept;
    std::uint64_t u64() noexcept;
    std::string_view str() noexcept;
    std::string_view rest() noexcept;  ///< the remaining bytes
    bool ok() const noexcept { return ok_; }
    bool at_end() const noexcept { return rest_.empty(); }

private:
    bool take(std::size_t n, std::string_view& out) noexcept;
    std::string_view rest_;
    bool ok_ = true;
};

/// Splits a byte stream into frames. Owner-thread only.
class frame_reader {
public:
    explicit frame_reader(std::size_t max_frame_size) noexcept : max_(max_frame_size) {}
    void set_limit(std::size_t max_frame_size) noexcept { max_ = max_frame_size; }
    /// Appends received bytes.
    void feed(const char* data, std::size_t n) { buf_.append(data, n); }
    enum class status { need_more, frame, malformed };
    /// Extracts the next complete frame body into `body`. `malformed` means a length of zero or
    /// above the limit; the stream cannot be resynchronised after it.
    status next(std::string& body);
    std::size_t buffered() const noexcept { return buf_.size() - off_; }

private:
    std::string buf_;
    std::size_t off_ = 0;
    std::size_t max_;
};

/// Validates a worker->parent frame body completely (kind known, fields present, nothing
/// extra). The supervisor treats a body that fails this as a failure of the worker.
bool valid_worker_frame(std::string_view body) noexcept;

/// The body of a message that holds exactly one frame (the fork server's channel carries one
/// frame per SOCK_SEQPACKET message), or nullopt.
std::optional<std::string_view> single_frame(std::string_view message) noexcept;

/// Validates a fork server->parent frame body: forked, fork_failed, exited, or the
/// start_failed(no_init) frame of a server whose main did not call muster::init.
bool valid_server_frame(std::string_view body) noexcept;

/// Validates a parent->fork server frame body: fork or release.
bool valid_server_request(std::string_view body) noexcept;

}  // namespace muster::detail::wire
