// muster/process_pool.hpp: muster::process_pool, Python's ProcessPoolExecutor for registered
// C++ functions, with a failure model that keeps one crashing task from breaking the pool.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "muster/completion_queue.hpp"
#include "muster/detail/pull_iterator.hpp"
#include "muster/detail/remote_call.hpp"
#include "muster/detail/remote_task.hpp"
#include "muster/error.hpp"
#include "muster/future.hpp"
#include "muster/init.hpp"
#include "muster/thread_pool.hpp"  // default_max_workers, shutdown_options

namespace muster {

/// A worker process died or was killed while it ran this future's task: it crashed (a signal
/// such as SIGSEGV or SIGABRT), called exit, ran out of memory, broke the wire protocol (sent a
/// malformed or oversized frame), or was killed by process_pool::terminate(). Only the future
/// of the task it was running gets this error; the pool starts a replacement and is NOT broken
/// (it derives from broken_pool because, for that one task, the worker pool failed).
class worker_lost_error : public broken_pool {
public:
    worker_lost_error(std::string message, int signal, int exit_status)
        : broken_pool(std::move(message)), signal_(signal), exit_status_(exit_status) {}
    /// The signal that ended the worker, or 0.
    int signal() const noexcept { return signal_; }
    /// The worker's exit status if it exited, or -1.
    int exit_status() const noexcept { return exit_status_; }

private:
    int signal_;
    int exit_status_;
};

/// A task function to run in each worker before its first task (process_pool_options::
/// initializer): `muster::remote_function::of<&setup>()` for a registered `void setup()`.
struct remote_function {
    std::string name;
    template <auto Fn>
    static remote_function of() {
        using tr = detail::remote_fn_traits<decltype(Fn)>;
        static_assert(tr::arity == 0 && std::is_void_v<typename tr::result>,
                      "muster::remote_function::of<&fn>: an initializer is a function void fn()");
        (void)detail::remote_registered<Fn>;
        return remote_function{std::string(task_name<Fn>::value)};
    }
};

/// How a process_pool starts its worker processes.
enum class process_start {
    /// The pool spawns one fork server (this program, turned into a server by muster::init) when
    /// it first needs a worker, and the server forks every worker. Fast (no exec or dynamic
    /// loading per worker; about 0.2 ms), independent of the parent's memory size, and safe:
    /// the server is single-threaded and has run nothing but static initialisation. Workers
    /// are copies of that state: a value drawn at static initialisation (a random seed) is the
    /// same in every worker, as is the address-space layout. Python's "forkserver". If the
    /// program's static initialisation starts threads, the server is not single-threaded and
    /// does not fork: it spawns each worker as `spawn` would (same protocol, spawn's speed).
    fork_server,
    /// posix_spawn of /proc/self/exe for every worker: each one loads and initialises the
    /// program on its own (1-2 ms each, its own random seeds and ASLR layout). Python's "spawn".
    spawn,
};

/// Construction options, used with designated initialisers:
/// `muster::process_pool pool({.max_workers = 4, .task_timeout = 10s});`
struct process_pool_options {
    /// Upper bound on live worker processes (>= 1).
    std::size_t max_workers = default_max_workers();
    /// Once started, at least this many workers are kept alive (<= max_workers).
    std::size_t min_workers = 0;
    /// true: workers start when tasks are queued and no worker is idle. false: max_workers
    /// workers start when the pool is constructed.
    bool lazy = true;
    /// A worker exits after this many tasks and a fresh one replaces it; 0: never.
    std::size_t max_tasks_per_child = 0;
    /// A task running longer is stopped: its worker is killed (SIGTERM, then SIGKILL after
    /// kill_grace) and its future fails with timeout_error. nullopt: no limit. Per call:
    /// submit_with({.timeout = ...}).
    std::optional<std::chrono::milliseconds> task_timeout{};
    /// Address-space limit of each worker in bytes (RLIMIT_AS), 0 for none: an allocation above
    /// it fails in the task (std::bad_alloc reaches the future as remote_error). Not applied in
    /// AddressSanitizer or ThreadSanitizer builds, which need a large address space.
    std::size_t memory_limit = 0;
    /// Runs in each worker before its first task; if it throws, the pool is broken.
    std::optional<remote_function> initializer{};
    /// Worker processes are named `<name_prefix>_<i>` (Linux shows 15 characters); default
    /// `muster-p<k>`, k a process-wide pool counter.
    std::string name_prefix{};
    /// Receives exceptions of post() tasks and of done-callbacks. Default: print to stderr.
    std::function<void(std::exception_ptr)> on_unhandled_exception{};
    /// A started worker must answer the handshake within this time (it answers from
    /// muster::init, after the initializer); otherwise the pool is broken.
    std::chrono::milliseconds start_timeout = std::chrono::seconds(10);
    /// Time between SIGTERM and SIGKILL when a worker is stopped.
    std::chrono::milliseconds kill_grace = std::chrono::milliseconds(500);
    /// Largest frame accepted in either direction (argument or result payload plus a few bytes).
    std::size_t max_frame_size = std::size_t{64} << 20;
    /// How workers start; see process_start. The fork server is one more process of the pool,
    /// not counted in max_workers.
    process_start start_method = process_start::fork_server;
};

/// Per-call options of submit_with / post_with.
struct call_options {
    /// Overrides process_pool_options::task_timeout for this task.
    std::optional<std::chrono::milliseconds> timeout{};
};

/// Options of process_pool::map and map_unordered.
struct process_map_options {
    /// At most this many chunks in flight; nullopt: 2 * max_workers. 0 is invalid.
    std::optional<std::size_t> buffersize{};
    /// Inputs sent to a worker in one message (one task: the pool's task_timeout and
    /// max_tasks_per_child count chunks). 0 is invalid. nullopt (the default) chooses it:
    /// - a sized input (std::ranges::sized_range) of n elements: ceil(n / (4 * max_workers)),
    ///   clamped to [1, 1024]: multiprocessing.Pool.map's rule, with a cap;
    /// - any other input (lazy, possibly infinite): chunks of 1, 2, 4, ... doubling up to 64, so
    ///   the first results come back after one call, and the input is still read at most
    ///   buffersize chunks ahead.
    /// Explicit or automatic, a chunk whose serialised inputs would not fit in max_frame_size,
    /// or would not serialise, is sent as halves, recursively, so that only an input that fails
    /// on its own fails (with serialization_error, as a submit's arguments would). Results come
    /// back as one frame per chunk: when chunksize results together can exceed max_frame_size,
    /// every element of that chunk fails with serialization_error; give a smaller chunksize.
    std::optional<std::size_t> chunksize{};
    /// One deadline for the whole iteration, measured from the map() call.
    std::optional<std::chrono::steady_clock::duration> timeout{};
};

namespace detail {
class process_core;

/// One submitted call, owned by the supervisor until its future is completed.
struct remote_job {
    task_base* task = nullptr;  ///< holds one reference
    deliver_fn deliver = nullptr;
    std::string_view function;  ///< task_name<Fn>::value: static storage
    std::string payload;
    std::optional<std::chrono::milliseconds> timeout;
    bool post = false;  ///< report an error to the unhandled handler
};

std::shared_ptr<process_core> make_process_core(process_pool_options options);
std::uint32_t process_pool_id(const process_core& core) noexcept;
std::size_t process_max_workers(const process_core& core) noexcept;
std::weak_ptr<remote_stopper> process_stopper(process_core& core) noexcept;
/// Queues `job` (taking over its task reference). Throws broken_pool or shutdown_error; then
/// the reference has been released.
void process_enqueue(process_core& core, remote_job job);
void process_shutdown(process_core& core, shutdown_options options);
void process_terminate(process_core& core);
[[noreturn]] void throw_process_map_timeout(std::size_t in_flight);
std::size_t process_map_buffersize(const process_map_options& options, std::size_t max_workers);
std::size_t process_max_frame(const process_core& core) noexcept;

/// Whether a task frame carrying `payload` bytes of arguments for the function named
/// `function` fits in the pool's max_frame_size (64 bytes cover the frame's other fields).
inline bool process_payload_fits(const process_core& core, std::string_view function,
                                 std::size_t payload) noexcept {
    return payload + function.size() + 64 <= process_max_frame(core);
}

/// Creates the future of one call of the registered function `function` (static storage),
/// whose result type is R, fills its payload with `encode()` (the cereal archive of the
/// argument tuple, or a throw of serialization_error) and queues it. A payload that cannot be
/// made or does not fit the frame limit fails only the returned future (Python item 93); the
/// pool is unaffected. Throws what process_enqueue throws.
template <class R, class Encode>
auto process_submit_encoded(process_core& core, std::string_view function, call_options opts,
                            bool post, Encode&& encode) {
    auto* t = new remote_task<R>(2, process_pool_id(core), process_stopper(core));
    auto fut = future_access::adopt<R>(t);
    remote_job job{t, &deliver_result<R>, function, {}, opts.timeout, post};
    try {
        job.payload = std::forward<Encode>(encode)();
        if (!process_payload_fits(core, function, job.payload.size()))
            throw serialization_error(
                "muster::process_pool: the serialised arguments (" +
                std::to_string(job.payload.size()) +
                " bytes) exceed process_pool_options::max_frame_size; raise it or send less");
    } catch (const serialization_error&) {
        t->set_error(std::current_exception());
        t->release();
        return fut;
    }
    process_enqueue(core, std::move(job));
    return fut;
}

template <auto Fn, class... A>
auto process_submit(process_core& core, call_options opts, bool post, A&&... a) {
    using tr = remote_fn_traits<decltype(Fn)>;
    using R = typename tr::result;
    using Args = typename tr::args;
    static_assert(std::is_constructible_v<Args, A&&...>,
                  "muster::process_pool::submit<&fn>(args...): the arguments do not convert to "
                  "fn's parameter types");
    static_assert(all_serializable<Args>::value && cereal_serializable_v<R>,
                  "muster::process_pool: every parameter and the result of fn must be "
                  "serialisable with cereal (standard types are; a user type adds a serialize "
                  "member: template <class A> void serialize(A& ar) { ar(field1, field2); })");
    (void)remote_registered<Fn>;
    return process_submit_encoded<R>(core, task_name<Fn>::value, opts, post,
                                     [&] { return encode_args<Args>(std::forward<A>(a)...); });
}
}  // namespace detail

template <auto Fn, class View>
class process_map_range;
template <auto Fn, class View>
class process_map_unordered_range;

/// A pool of worker processes running registered functions: Python's ProcessPoolExecutor.
///
/// Workers are this same program, turned into workers by muster::init(argc, argv), which main
/// must call first: forked by the pool's fork server (itself started with posix_spawn of
/// /proc/self/exe; the default) or each spawned that way (process_start). A task is a plain function
/// known to every process: `pool.submit<&fn>(args...)`. Arguments and results travel as cereal
/// binary archives; a user type adds a `serialize` member.
///
/// Failure model (docs/design/process_pool.md): a task's exception arrives as remote_error
/// (type name and message). A worker that dies while running a task (signal, exit, out of
/// memory, broken frame) fails only that future, with worker_lost_error, and is replaced. A
/// task past its timeout fails with timeout_error and its worker is killed and replaced.
/// future::cancel() (or request_stop()) on a running task cancels it at once and kills its
/// worker, which is replaced. The pool is broken (pending futures fail with broken_pool,
/// submits throw it) only when workers cannot be started: the program cannot be spawned, main
/// does not call muster::init, or the initializer throws.
///
/// Futures complete, and done-callbacks run, on the pool's supervisor thread.
///
/// Thread safety: every member is thread-safe. The destructor must not run concurrently with
/// other members. Lifetime: the destructor calls shutdown({.wait = true}); run inside one of
/// this pool's done-callbacks (the last owner letting go there), it shuts down without waiting
/// and the supervisor finishes the remaining work and the workers' exit on its own. Parent
/// death: workers exit when their channel closes or, through PR_SET_PDEATHSIG, when the parent
/// (or the fork server, which dies with the parent) dies.
class process_pool {
public:
    /// Creates the pool and its supervisor thread; workers start lazily unless `lazy = false`.
    /// Throws invalid_argument for max_workers == 0, min_workers > max_workers, a zero
    /// max_frame_size.
    explicit process_pool(process_pool_options options = {})
        : core_(detail::make_process_core(std::move(options))) {}
    process_pool(const process_pool&) = delete;
    process_pool& operator=(const process_pool&) = delete;
    ~process_pool() { shutdown({.wait = true}); }

    /// Runs `Fn(args...)` in a worker process; returns its future. The arguments are converted
    /// to Fn's parameter types and serialised before this returns (a serialisation failure fails
    /// only the returned future, with serialization_error). Throws shutdown_error after
    /// shutdown, broken_pool on a broken pool. Never blocks on workers.
    template <auto Fn, class... A>
    [[nodiscard]] auto submit(A&&... args) {
        return detail::process_submit<Fn>(*core_, {}, false, std::forward<A>(args)...);
    }
    /// As submit, with per-call options (e.g. `{.timeout = 100ms}`).
    template <auto Fn, class... A>
    [[nodiscard]] auto submit_with(call_options opts, A&&... args) {
        return detail::process_submit<Fn>(*core_, opts, false, std::forward<A>(args)...);
    }
    /// Fire-and-forget: an exception or a lost worker goes to on_unhandled_exception.
    template <auto Fn, class... A>
    void post(A&&... args) {
        (void)detail::process_submit<Fn>(*core_, {}, true, std::forward<A>(args)...);
    }
    template <auto Fn, class... A>
    void post_with(call_options opts, A&&... args) {
        (void)detail::process_submit<Fn>(*core_, opts, true, std::forward<A>(args)...);
    }

    /// Callables other than a registered function cannot run in another process.
    template <class F, class... A>
    void submit(F&&, A&&...) {
        static_assert(sizeof(F) == 0,
                      "muster::process_pool::submit takes the function as a template argument: "
                      "pool.submit<&fn>(args...), with fn a plain (non-member) function. Lambdas "
                      "with captures and std::function cannot run in another process; use "
                      "muster::thread_pool for them");
    }

    /// Applies the one-parameter function Fn to each element of `input` in worker processes,
    /// yielding results in input order; lazy, at most `buffersize` chunks in flight, input read
    /// only to refill them, so an infinite range works. A chunk is one task carrying several
    /// inputs; by default its size is chosen from the input (process_map_options::chunksize:
    /// about four chunks per worker for a sized input, 1, 2, 4, ... 64 for an unsized one). An
    /// element whose call threw rethrows remote_error when reached; iteration may go on past it;
    /// an error of the whole chunk (its worker lost, its timeout) is reported by each of its
    /// elements. Advancing (begin, ++) waits for the next chunk: when the deadline passes
    /// first, it throws timeout_error, the rest is cancelled and the iteration ends. Dropping
    /// the range cancels chunks not yet dispatched. Throws invalid_argument for buffersize == 0
    /// or chunksize == 0. The returned range is thread-compatible (one consumer); the input is
    /// read by map() itself, to fill the first buffersize chunks, and then by begin and ++.
    template <auto Fn, class Range>
    auto map(Range&& input, process_map_options options = {});
    /// As map(), yielding results in completion order (within a chunk, in input order).
    template <auto Fn, class Range>
    auto map_unordered(Range&& input, process_map_options options = {});

    /// Stops accepting tasks (submit then throws shutdown_error); with cancel_pending, cancels
    /// tasks not yet dispatched; with wait, blocks until every task has ended and every worker
    /// has exited. Idempotent. Must not be called from a done-callback of this pool (that runs on
    /// the supervisor thread, which it would wait for).
    void shutdown(shutdown_options options = {}) { detail::process_shutdown(*core_, options); }

    /// Shuts down, cancels every pending task, kills every worker (running futures fail with
    /// worker_lost_error) and returns once they are gone.
    void terminate() { detail::process_terminate(*core_); }

    /// The configured max_workers.
    std::size_t max_workers() const noexcept { return detail::process_max_workers(*core_); }

private:
    template <auto Fn, class View>
    friend class process_map_range;
    template <auto Fn, class View>
    friend class process_map_unordered_range;

    /// map() and map_unordered(): the buffer size, the deadline from now, and the range.
    template <template <auto, class> class MapRange, auto Fn, class Range>
    auto make_map_range(Range&& input, const process_map_options& options);

    std::shared_ptr<detail::process_core> core_;
};

namespace detail {
/// The automatic chunk sizes of process_map_options::chunksize.
inline constexpr std::size_t process_map_sized_chunk_cap = 1024;
inline constexpr std::size_t process_map_unsized_chunk_cap = 64;

/// The automatic chunk size for a sized input of `n` elements: ceil(n / (4 * workers)),
/// clamped to [1, process_map_sized_chunk_cap].
constexpr std::size_t process_map_sized_chunk(std::size_t n, std::size_t workers) noexcept {
    std::size_t const parts = 4 * (workers == 0 ? 1 : workers);
    std::size_t const c = n / parts + (n % parts != 0 ? 1 : 0);
    return c < 1 ? 1 : (c > process_map_sized_chunk_cap ? process_map_sized_chunk_cap : c);
}

template <auto Fn, class View>
class process_map_base {
protected:
    using tr = remote_fn_traits<decltype(Fn)>;
    using T = typename tr::result;
    using Arg = std::tuple_element_t<0, typename tr::args>;
    using Chunk = std::vector<chunk_item<T>>;
    static_assert(tr::arity == 1 && !std::is_void_v<T>,
                  "muster::process_pool::map<&fn>: fn must take one parameter and return a value");
    static_assert(cereal_serializable_v<Arg> && cereal_serializable_v<T>,
                  "muster::process_pool: every parameter and the result of fn must be "
                  "serialisable with cereal (standard types are; a user type adds a serialize "
                  "member: template <class A> void serialize(A& ar) { ar(field1, field2); })");

    process_map_base(std::shared_ptr<process_core> core, View input,
                     std::optional<std::size_t> chunksize, deadline_t deadline)
        : core_(std::move(core)),
          input_(std::make_unique<View>(std::move(input))),
          it_(std::ranges::begin(*input_)),
          deadline_(deadline) {
        (void)remote_registered<&run_chunk<Fn>>;
        if (chunksize) {
            chunksize_ = *chunksize;
        } else if constexpr (std::ranges::sized_range<View>) {
            chunksize_ = process_map_sized_chunk(static_cast<std::size_t>(std::ranges::size(*input_)),
                                                 process_max_workers(*core_));
        } else {
            chunksize_ = 1;
            growing_ = true;
        }
    }

    /// Reads the next chunk of inputs and submits it, calling `sink(future<Chunk>, size)` for
    /// each message in input order: one, unless the chunk had to be split (submit_batch).
    /// Returns false, reading nothing, when the input is exhausted.
    template <class Sink>
    bool pull_chunk(Sink&& sink) {
        std::vector<Arg> batch;
        while (batch.size() < chunksize_ && it_ != std::ranges::end(*input_)) {
            batch.emplace_back(*it_);
            ++it_;
        }
        if (batch.empty()) return false;
        if (growing_) {
            chunksize_ = 2 * chunksize_ < process_map_unsized_chunk_cap ? 2 * chunksize_
                                                                        : process_map_unsized_chunk_cap;
            growing_ = chunksize_ < process_map_unsized_chunk_cap;
        }
        submit_batch(std::move(batch), sink);
        return true;
    }

    /// Submits `batch` as one run_chunk task. A batch of two or more inputs whose arguments do
    /// not serialise or do not fit max_frame_size is submitted as its two halves instead, each
    /// checked the same way, so only an input that fails by itself fails (its future carries
    /// serialization_error). Encoding a half again costs time only on that failure path.
    template <class Sink>
    void submit_batch(std::vector<Arg> batch, Sink& sink) {
        constexpr std::string_view name = task_name<&run_chunk<Fn>>::value;
        std::string payload;
        std::exception_ptr error;
        try {
            // The archive of tuple<const vector<Arg>&> is byte for byte that of the
            // tuple<vector<Arg>> the worker decodes: cereal's binary archive writes the
            // elements only, and a reference avoids copying the batch.
            payload = encode_args<std::tuple<const std::vector<Arg>&>>(batch);
        } catch (const serialization_error&) {
            error = std::current_exception();
        }
        if (batch.size() > 1 && (error || !process_payload_fits(*core_, name, payload.size()))) {
            auto const half = batch.begin() + static_cast<std::ptrdiff_t>(batch.size() / 2);
            std::vector<Arg> rest(std::make_move_iterator(half), std::make_move_iterator(batch.end()));
            batch.erase(half, batch.end());
            submit_batch(std::move(batch), sink);
            submit_batch(std::move(rest), sink);
            return;
        }
        std::size_t const n = batch.size();
        sink(process_submit_encoded<Chunk>(*core_, name, {}, false,
                                           [&]() -> std::string {
                                               if (error) std::rethrow_exception(error);
                                               return std::move(payload);
                                           }),
             n);
    }

    /// Turns one chunk element into the value, or throws its task's exception.
    static T take(chunk_item<T>& item) {
        if (item.value) return std::move(*item.value);
        throw remote_error(std::move(item.type_name), std::move(item.message));
    }

    /// The first part of advancing, the same in both orders: the next element of a chunk that
    /// failed as a whole, or of the chunk being consumed. Returns true when that moved the range
    /// on (or it had finished); false when the next chunk is needed (the consumed one is dropped).
    bool step_in_chunk() {
        current_.reset();
        if (failed_left_ > 0) {  // the next element of a chunk that failed as a whole
            --failed_left_;
            return true;
        }
        current_error_ = nullptr;
        if (finished_) {
            at_end_ = true;
            return true;
        }
        if (pos_ < chunk_.size()) {
            fill(chunk_[pos_++]);
            return true;
        }
        chunk_.clear();
        pos_ = 0;
        return false;
    }

    /// Makes the finished chunk `f` of `size` inputs the one being consumed and moves to its
    /// first element. If the whole chunk failed (its worker was lost, or it timed out), each of
    /// its elements reports that error, so later elements keep their positions.
    void take_chunk(future<Chunk>&& f, std::size_t size) {
        try {
            chunk_ = std::move(f).result();
        } catch (...) {
            current_error_ = std::current_exception();
            failed_left_ = size - 1;
            return;
        }
        if (chunk_.empty()) {
            at_end_ = true;
            return;
        }
        fill(chunk_[pos_++]);
    }

    void fill(chunk_item<T>& item) {
        try {
            current_.emplace(take(item));
        } catch (...) {
            current_error_ = std::current_exception();
        }
    }

    T& current() {
        if (current_error_) std::rethrow_exception(current_error_);
        return *current_;
    }

public:
    std::default_sentinel_t end() const noexcept { return {}; }
    bool exhausted() const noexcept { return at_end_; }

protected:

    std::shared_ptr<process_core> core_;
    std::unique_ptr<View> input_;
    std::ranges::iterator_t<View> it_;
    std::size_t chunksize_ = 1;  // inputs in the next chunk
    bool growing_ = false;       // automatic, unsized input: chunksize_ doubles up to the cap
    deadline_t deadline_;
    bool at_end_ = false;
    bool finished_ = false;
    Chunk chunk_;  // the chunk being consumed
    std::size_t pos_ = 0;
    std::optional<T> current_;
    std::exception_ptr current_error_;
    std::size_t failed_left_ = 0;  // elements of a failed chunk still to report
};
}  // namespace detail

/// The lazy range returned by process_pool::map: results in input order. One consumer.
template <auto Fn, class View>
class process_map_range : detail::process_map_base<Fn, View> {
    using base = detail::process_map_base<Fn, View>;
    using typename base::Chunk;
    using typename base::T;

public:
    using value_type = T;
    process_map_range(std::shared_ptr<detail::process_core> core, View input,
                      std::optional<std::size_t> chunksize, std::size_t buffersize,
                      detail::deadline_t deadline)
        : base(std::move(core), std::move(input), chunksize, deadline) {
        for (std::size_t i = 0; i < buffersize; ++i)
            if (!pull()) break;
    }
    process_map_range(process_map_range&&) noexcept = default;
    process_map_range& operator=(process_map_range&&) = delete;
    ~process_map_range() { cancel_rest(); }

    using iterator = detail::pull_iterator<process_map_range, T&>;
    /// Waits for the first element; throws timeout_error if the deadline passes first.
    iterator begin() {
        advance();
        return iterator(this);
    }
    using base::end;
    using base::exhausted;

private:
    friend class detail::pull_iterator<process_map_range, T&>;
    using base::current;
    bool pull() {
        return this->pull_chunk([this](future<Chunk>&& f, std::size_t size) {
            inflight_.emplace_back(std::move(f), size);
        });
    }
    void advance() {
        if (this->step_in_chunk()) return;
        pull();
        if (inflight_.empty()) {
            this->at_end_ = true;
            return;
        }
        auto [f, size] = std::move(inflight_.front());
        inflight_.pop_front();
        if (f.wait_until(this->deadline_.value_or(detail::clock::time_point::max())) !=
            std::future_status::ready) {
            std::size_t const n = inflight_.size() + 1;
            detail::future_access::cancel_pending(f);  // a running chunk finishes (as map.hpp)
            cancel_rest();
            this->finished_ = true;
            detail::throw_process_map_timeout(n);
        }
        this->take_chunk(std::move(f), size);
    }
    void cancel_rest() {
        for (auto& f : inflight_) detail::future_access::cancel_pending(f.first);
        inflight_.clear();
    }

    std::deque<std::pair<future<Chunk>, std::size_t>> inflight_;
};

/// The lazy range returned by process_pool::map_unordered: results in completion order.
template <auto Fn, class View>
class process_map_unordered_range : detail::process_map_base<Fn, View> {
    using base = detail::process_map_base<Fn, View>;
    using typename base::Chunk;
    using typename base::T;

public:
    using value_type = T;
    process_map_unordered_range(std::shared_ptr<detail::process_core> core, View input,
                                std::optional<std::size_t> chunksize, std::size_t buffersize,
                                detail::deadline_t deadline)
        : base(std::move(core), std::move(input), chunksize, deadline),
          done_(std::make_unique<completion_queue<Chunk, std::size_t>>()) {
        for (std::size_t i = 0; i < buffersize; ++i)
            if (!pull()) break;
    }
    process_map_unordered_range(process_map_unordered_range&&) noexcept = default;
    process_map_unordered_range& operator=(process_map_unordered_range&&) = delete;
    ~process_map_unordered_range() {
        if (done_) done_->cancel_pending();
    }

    using iterator = detail::pull_iterator<process_map_unordered_range, T&>;
    iterator begin() {
        advance();
        return iterator(this);
    }
    using base::end;
    using base::exhausted;

private:
    friend class detail::pull_iterator<process_map_unordered_range, T&>;
    using base::current;
    bool pull() {
        return this->pull_chunk([this](future<Chunk>&& f, std::size_t size) {
            done_->add(size, std::move(f));  // tagged with the chunk's size
        });
    }
    void advance() {
        if (this->step_in_chunk()) return;
        pull();
        if (done_->empty()) {
            this->at_end_ = true;
            return;
        }
        std::optional<tagged_future<Chunk, std::size_t>> next;
        if (this->deadline_) next = done_->pop_for(*this->deadline_ - detail::clock::now());
        else next = done_->pop();
        if (!next) {
            std::size_t const n = done_->pending();
            done_->cancel_pending();
            this->finished_ = true;
            detail::throw_process_map_timeout(n);
        }
        this->take_chunk(std::move(next->future), next->tag);
    }

    std::unique_ptr<completion_queue<Chunk, std::size_t>> done_;
};

template <template <auto, class> class MapRange, auto Fn, class Range>
auto process_pool::make_map_range(Range&& input, const process_map_options& options) {
    std::size_t const b = detail::process_map_buffersize(options, max_workers());
    detail::deadline_t deadline;
    if (options.timeout) deadline = detail::deadline_after(*options.timeout);
    auto view = std::views::all(std::forward<Range>(input));
    return MapRange<Fn, decltype(view)>(core_, std::move(view), options.chunksize, b, deadline);
}

template <auto Fn, class Range>
auto process_pool::map(Range&& input, process_map_options options) {
    return make_map_range<process_map_range, Fn>(std::forward<Range>(input), options);
}

template <auto Fn, class Range>
auto process_pool::map_unordered(Range&& input, process_map_options options) {
    return make_map_range<process_map_unordered_range, Fn>(std::forward<Range>(input), options);
}

}  // namespace muster
