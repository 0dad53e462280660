#include "scheduler/pool_core.hpp"

#include <algorithm>
#include <pthread.h>

#include "muster/detail/parking.hpp"
#include "unhandled.hpp"

namespace muster::detail {

namespace {

/// The worker running on this thread (of whichever pool), or nullptr.
thread_local worker* tls_worker = nullptr;

/// Completion hook that hands a park token to a parked thread when its task completes
/// (docs/design/sleep.md, H3). `fired` is the hook's last access to itself, so the waiter may
/// destroy the hook (it lives on the waiter's stack) once it reads 1.
struct wake_hook final : completion_hook {
    std::atomic<std::uint32_t>* word = nullptr;
    std::atomic<std::uint32_t> fired{0};
    void on_complete(task_base&) noexcept override {
        std::atomic<std::uint32_t>* const w = word;
        w->store(1, std::memory_order_release);
        unpark_one(*w);
        // release: orders the accesses above before the waiter's destruction of the hook.
        fired.store(1, std::memory_order_release);
    }
};

/// Waiting for one task: the target behind future::wait().
struct task_target final : wait_target {
    task_base& task;
    wake_hook hook;
    explicit task_target(task_base& t) : task(t) {}
    bool ready() override { return task.done(); }
    bool arm(std::atomic<std::uint32_t>* word) override {
        hook.word = word;
        return task.add_hook(&hook, /*front=*/true);
    }
    void disarm(std::atomic<std::uint32_t>*) override {
        if (task.remove_hook(&hook)) return;
        // The completer took the hook list: wait until it is done with our hook.
        while (hook.fired.load(std::memory_order_acquire) == 0) std::this_thread::yield();
    }
    bool block(deadline_t deadline) override {
        // F3: park on the task's state word after setting st_waiters, so the completer knows
        // to wake us (it skips the system call otherwise).
        std::uint32_t s = task.state_.load(std::memory_order_acquire);
        for (;;) {
            if (phase_done(s)) return true;
            if (!(s & st_waiters)) {
                if (!task.state_.compare_exchange_weak(s, s | st_waiters,
                                                       std::memory_order_acq_rel,
                                                       std::memory_order_acquire))
                    continue;
                s |= st_waiters;
            }
            if (!park(task.state_, s, deadline)) return task.done();
            s = task.state_.load(std::memory_order_acquire);
        }
    }
};

std::string pool_label(const std::string& prefix) { return "muster::thread_pool '" + prefix + "'"; }

constexpr int ext_open = 0;
constexpr int ext_closed = 1;
constexpr int ext_broken = 2;

}  // namespace

// ---- construction and options ----------------------------------------------------------------

std::size_t muster_default_workers() noexcept {
    unsigned const n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

pool_core::pool_core(thread_pool_options options)
    : opts_(std::move(options)), id_(next_executor_id()), stop_token_(stop_.get_token()) {
    if (opts_.max_workers == 0)
        throw invalid_argument(
            "muster::thread_pool_options::max_workers is 0; it must be at least 1 (leave it out "
            "to use the hardware's thread count, " +
            std::to_string(muster_default_workers()) + " here)");
    if (opts_.min_workers > opts_.max_workers)
        throw invalid_argument("muster::thread_pool_options::min_workers (" +
                               std::to_string(opts_.min_workers) + ") is greater than max_workers (" +
                               std::to_string(opts_.max_workers) +
                               "); lower min_workers or raise max_workers");
    if (opts_.keep_alive.count() < 0)
        throw invalid_argument("muster::thread_pool_options::keep_alive is negative; use 0 or more");
    if (opts_.spin.count() < 0)
        throw invalid_argument("muster::thread_pool_options::spin is negative; use 0 or more");
    if (opts_.block_timeout && opts_.block_timeout->count() < 0)
        throw invalid_argument(
            "muster::thread_pool_options::block_timeout is negative; use 0 or more, or leave it "
            "out to block as long as it takes");
    switch (opts_.overflow) {
        case overflow_policy::block:
        case overflow_policy::reject:
        case overflow_policy::caller_runs:
        case overflow_policy::discard_oldest: break;
        default:
            throw invalid_argument(
                "muster::thread_pool_options::overflow is not one of block, reject, caller_runs, "
                "discard_oldest");
    }
    prefix_ = opts_.name_prefix.empty() ? "muster-" + std::to_string(id_) : opts_.name_prefix;
    slots_ = std::make_unique<std::atomic<worker*>[]>(opts_.max_workers);
    for (std::size_t i = 0; i < opts_.max_workers; ++i)
        slots_[i].store(nullptr, std::memory_order_relaxed);
    register_unhandled_handler(id_, pool_label(prefix_), opts_.on_unhandled_exception);
}

pool_core::~pool_core() {
    // Every thread was joined by shutdown(wait), except when the last owner is one of our own
    // workers (the pool was destroyed from inside its own task): that thread cannot join itself.
    std::size_t const n = slot_count_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
        worker* const w = slots_[i].load(std::memory_order_acquire);
        if (!w) continue;
        if (w->thread.joinable()) {
            if (w->thread.get_id() == std::this_thread::get_id()) w->thread.detach();
            else w->thread.join();
        }
        delete w;
    }
    unregister_unhandled_handler(id_);
}

worker* pool_core::current_worker() const noexcept {
    worker* const w = tls_worker;
    return w && w->core == this ? w : nullptr;
}

// ---- submission ------------------------------------------------------------------------------

namespace {
[[noreturn]] void reject(task_base* t, std::exception_ptr why) {
    // The task will never run: destroy its callable (cancel) and drop the queue's reference. The
    // submitter's future (if any) is destroyed by the unwinding.
    t->try_cancel();
    t->release();
    std::rethrow_exception(why);
}
}  // namespace

bool pool_core::try_reserve() noexcept {
    // seq_cst: S7; a blocked submitter's re-check must be ordered after its registration.
    std::size_t q = queued_.load(std::memory_order_seq_cst);
    while (q < opts_.queue_capacity) {
        // acq_rel: a reservation is a claim on capacity; pairs with on_dequeued's release.
        if (queued_.compare_exchange_weak(q, q + 1, std::memory_order_acq_rel,
                                          std::memory_order_relaxed))
            return true;
    }
    return false;
}

std::exception_ptr pool_core::closed_error() const {
    int const s = ext_state_.load(std::memory_order_acquire);
    if (s == ext_broken) {
        std::lock_guard lock(mu_);
        return std::make_exception_ptr(broken_pool(broken_reason_));
    }
    return std::make_exception_ptr(shutdown_error(
        pool_label(prefix_) +
        ": cannot submit after shutdown() or terminate(); submit before shutting down, or "
        "create a new pool"));
}

void pool_core::run_inline(task_base* t) {
    if (t->try_start()) {
        t->ops_->run(t, stop_token_);
        (t->phase() == st_error ? extra_failed_ : extra_completed_)
            .fetch_add(1, std::memory_order_relaxed);
    }
    t->release();
}

bool pool_core::evict_oldest() {
    std::size_t n = 0;
    task_base* t = injected_.pop_batch(1, n);
    for (std::size_t i = 0, count = slot_count_.load(std::memory_order_acquire); !t && i < count;
         ++i)
        if (worker* w = slots_[i].load(std::memory_order_acquire)) t = w->deque.steal();
    if (!t) return false;
    on_dequeued();
    if (t->try_cancel()) extra_cancelled_.fetch_add(1, std::memory_order_relaxed);
    t->release();
    return true;
}

/// Reserves queue capacity for one task according to the overflow policy. Returns false if the
/// task was run (or dropped) instead of being queued; throws (after releasing the task) if it
/// is refused.
bool pool_core::reserve_or_overflow(task_base* t, worker* w) {
    if (opts_.queue_capacity == 0 || try_reserve()) return true;
    switch (opts_.overflow) {
        case overflow_policy::reject:
            reject(t, std::make_exception_ptr(queue_full_error(
                          pool_label(prefix_) + ": the queue is full (queue_capacity = " +
                          std::to_string(opts_.queue_capacity) +
                          ", overflow = reject); retry later, raise queue_capacity, or use "
                          "overflow_policy::block")));
        case overflow_policy::caller_runs:
            run_inline(t);
            return false;
        case overflow_policy::discard_oldest:
            while (!try_reserve()) {
                if (!evict_oldest()) std::this_thread::yield();  // a worker is taking one
            }
            return true;
        case overflow_policy::block:
            break;
    }
    if (w) {
        // A worker must not block on its own pool's queue: every worker could end up waiting
        // for room that only workers can make. Run it here instead.
        run_inline(t);
        return false;
    }
    std::optional<clock::time_point> deadline;
    if (opts_.block_timeout) deadline = deadline_after(*opts_.block_timeout);
    std::unique_lock lock(space_mu_);
    // seq_cst: S7 in docs/design/sleep.md; a worker's release of capacity (seq_cst) either
    // precedes our re-check below or sees blocked_submitters_ > 0 and notifies under space_mu_.
    blocked_submitters_.fetch_add(1, std::memory_order_seq_cst);
    bool reserved = false;
    while (!(reserved = try_reserve())) {
        if (ext_state_.load(std::memory_order_acquire) != ext_open) break;
        if (!deadline) {
            space_cv_.wait(lock);
        } else if (space_cv_.wait_until(lock, *deadline) == std::cv_status::timeout) {
            reserved = try_reserve();
            break;
        }
    }
    blocked_submitters_.fetch_sub(1, std::memory_order_relaxed);
    lock.unlock();
    if (ext_state_.load(std::memory_order_acquire) != ext_open) {
        if (reserved) release_capacity();
        reject(t, closed_error());
    }
    if (!reserved)
        reject(t, std::make_exception_ptr(queue_full_error(
                      pool_label(prefix_) + ": the queue stayed full (queue_capacity = " +
                      std::to_string(opts_.queue_capacity) + ") for block_timeout = " +
                      std::to_string(opts_.block_timeout->count()) +
                      " ms; retry later or raise queue_capacity")));
    return true;
}

void pool_core::release_capacity() noexcept {
    // seq_cst: S7; pairs with the blocked submitter's registration.
    queued_.fetch_sub(1, std::memory_order_seq_cst);
    if (blocked_submitters_.load(std::memory_order_seq_cst) != 0) {
        std::lock_guard lock(space_mu_);
        space_cv_.notify_one();
    }
}

void pool_core::on_dequeued() noexcept {
    if (opts_.queue_capacity != 0) release_capacity();
}

void pool_core::enqueue(task_base* t) {
    worker* const w = current_worker();
    if (w) {
        // Submissions from the pool's own tasks go to the worker's deque. They are accepted while
        // the pool drains after a plain shutdown, so a running fork-join can finish.
        if (internal_closed_.load(std::memory_order_acquire)) reject(t, closed_error());
        if (!reserve_or_overflow(t, w)) return;
        w->deque.push(t);
        notify_work();
        return;
    }
    // Broken is reported before shut down (Python item 64), and both before the queue is full.
    if (ext_state_.load(std::memory_order_acquire) != ext_open) reject(t, closed_error());
    if (!reserve_or_overflow(t, nullptr)) return;
    if (injected_.push(t) != injection_queue::push_result::ok) {
        if (opts_.queue_capacity != 0) release_capacity();
        reject(t, closed_error());
    }
    notify_work();
}

void pool_core::enqueue_bulk(task_base* const* tasks, std::size_t count) {
    if (count == 0) return;
    worker* const w = current_worker();
    if (opts_.queue_capacity != 0) {
        // A bounded queue applies its overflow policy task by task.
        std::size_t i = 0;
        try {
            for (; i < count; ++i) enqueue(tasks[i]);
        } catch (...) {
            for (std::size_t j = i + 1; j < count; ++j) {
                tasks[j]->try_cancel();
                tasks[j]->release();
            }
            throw;
        }
        return;
    }
    auto refuse_all = [&] {
        for (std::size_t j = 1; j < count; ++j) {
            tasks[j]->try_cancel();
            tasks[j]->release();
        }
        reject(tasks[0], closed_error());
    };
    if (w) {
        if (internal_closed_.load(std::memory_order_acquire)) refuse_all();
        for (std::size_t i = count; i > 0; --i) w->deque.push(tasks[i - 1]);  // oldest popped first
        notify_work();
        return;
    }
    if (ext_state_.load(std::memory_order_acquire) != ext_open) refuse_all();
    for (std::size_t i = 0; i + 1 < count; ++i) tasks[i]->next_ = tasks[i + 1];
    if (injected_.push_list(tasks[0], tasks[count - 1], count) != injection_queue::push_result::ok)
        refuse_all();
    // One wake: the woken worker takes a batch and hands the search on (S3b), so the wake-ups
    // spread as the work is found, not all at once.
    notify_work();
}

// ---- finding and running work ----------------------------------------------------------------

task_base* pool_core::take_injected(worker& w) {
    std::size_t const avail = injected_.size();
    if (avail == 0) return nullptr;
    std::size_t const live = std::max<std::size_t>(1, live_.load(std::memory_order_relaxed));
    // Take a fair share, at most 32: one lock round trip per batch instead of per task.
    std::size_t const want = std::min<std::size_t>(32, avail / live + 1);
    std::size_t n = 0;
    task_base* first = injected_.pop_batch(want, n);
    if (!first) return nullptr;
    if (n > 1) {
        // Keep FIFO order: push the rest in reverse, so the owner's LIFO pops take the oldest.
        task_base* batch[32];
        std::size_t k = 0;
        for (task_base* t = first->next_; t; t = t->next_) batch[k++] = t;
        while (k > 0) w.deque.push(batch[--k]);
    }
    // Others may steal from the batch or take what is still injected: wake the next worker
    // (bulk submissions wake one worker and rely on this chain).
    if (n > 1 || !injected_.empty()) notify_work();
    return first;
}

task_base* pool_core::steal_any(worker& w) {
    std::size_t const n = slot_count_.load(std::memory_order_acquire);
    if (n <= 1) return nullptr;
    // xorshift: a cheap per-worker random start, so thieves do not all hit the same victim.
    w.rng ^= w.rng << 13;
    w.rng ^= w.rng >> 17;
    w.rng ^= w.rng << 5;
    std::size_t const start = w.rng % n;
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t const idx = (start + i) % n;
        if (idx == w.slot) continue;
        worker* const v = slots_[idx].load(std::memory_order_acquire);
        if (!v) continue;
        if (task_base* t = v->deque.steal()) return t;
    }
    return nullptr;
}

bool pool_core::work_visible() const noexcept {
    if (!injected_.empty()) return true;
    std::size_t const n = slot_count_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
        worker const* v = slots_[i].load(std::memory_order_acquire);
        if (v && !v->deque.empty()) return true;
    }
    return false;
}

task_base* pool_core::find_task(worker& w) {
    // Every 61st look starts with the injection queue, so outside submissions are not starved
    // by a worker that keeps feeding its own deque.
    if (++w.tick % 61 == 0)
        if (task_base* t = take_injected(w)) return t;
    if (task_base* t = w.deque.pop()) return t;
    if (task_base* t = take_injected(w)) return t;
    return steal_any(w);
}

task_base* pool_core::search(worker& w) {
    if (w.spin_window.count() == 0) return nullptr;  // S3c: spinning has not been paying off
    std::uint32_t expected = 0;
    // S3: at most one searcher. seq_cst pairs with notify_work's read of searching_.
    if (!searching_.compare_exchange_strong(expected, 1, std::memory_order_seq_cst,
                                            std::memory_order_relaxed))
        return nullptr;
    std::chrono::nanoseconds const full = opts_.spin;
    auto const deadline = clock::now() + w.spin_window;
    for (unsigned i = 1;; ++i) {
        if (task_base* t = find_task(w)) {
            searching_.store(0, std::memory_order_seq_cst);
            w.spin_window = std::min(full, w.spin_window * 2);  // S3c: spinning paid off
            // S3b: a searcher that found work hands the search on if more work is visible
            // anywhere (a submitter that saw us searching did not wake anyone).
            if (work_visible()) notify_work();
            return t;
        }
        if (i % 64 == 0 && clock::now() >= deadline) break;
        spin_pause();
    }
    searching_.store(0, std::memory_order_seq_cst);
    // S3c: it did not; spin less next time, down to not at all. park() turns the full window
    // back on when a wake-up comes sooner than the window after parking (spinning would have
    // caught it), so bursts get their low latency back at once.
    w.spin_window /= 2;
    if (w.spin_window < full / 16) w.spin_window = std::chrono::nanoseconds(0);
    return nullptr;
}

void pool_core::run_task(worker& w, task_base* t) {
    on_dequeued();
    // S3d: this task may block for a long time (I/O, a latch) while tasks wait in our deque.
    // Make sure another worker is awake or started for them, even if someone is searching.
    if (!w.deque.empty()) notify_work(/*even_if_searching=*/true);
    // Owner-only counters: a relaxed load and store instead of an RMW; stats() reads them relaxed.
    if (t->try_start()) {
        w.running.store(w.running.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        t->ops_->run(t, stop_token_);
        w.running.store(w.running.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
        auto& counter = t->phase() == st_error ? w.failed : w.completed;
        counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    } else {
        w.cancelled.store(w.cancelled.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
    }
    t->release();
}

// ---- sleeping and waking (docs/design/sleep.md) -----------------------------------------------

void pool_core::register_idle_locked(worker& w) {
    // S4a: reset the token, then become visible to wakers. idle_count_ is seq_cst so that the
    // re-check that follows cannot be ordered before it (pairs with S2).
    w.park_word.store(0, std::memory_order_relaxed);
    idle_.push_back(&w);
    w.in_idle_list = true;
    idle_count_.store(static_cast<std::uint32_t>(idle_.size()), std::memory_order_seq_cst);
}

bool pool_core::leave_idle(worker& w) {
    std::lock_guard lock(mu_);
    // A waker chose us (removed us from the list and stored the token, both under mu_): the
    // caller must pass that wake on if it is not going to look for work itself (S4c).
    if (!w.in_idle_list) return true;
    idle_.erase(std::find(idle_.begin(), idle_.end(), &w));
    w.in_idle_list = false;
    idle_count_.store(static_cast<std::uint32_t>(idle_.size()), std::memory_order_seq_cst);
    return false;
}

void pool_core::wake_all_locked() {
    for (worker* w : idle_) {
        w->in_idle_list = false;
        w->park_word.store(1, std::memory_order_release);
        unpark_one(w->park_word);
    }
    idle_.clear();
    idle_count_.store(0, std::memory_order_seq_cst);
}

bool pool_core::quiescent_locked(bool from_worker) const {
    // From outside: every live worker parked (a worker inside a task's wait_idle is still
    // running that task). From a worker: every other worker parked or itself in wait_idle.
    std::size_t const live = live_.load(std::memory_order_relaxed);
    std::size_t const resting = parked_ + (from_worker ? idle_helpers_ : 0);
    std::size_t const allowed = from_worker ? 1 : 0;
    return injected_.empty() && (live <= resting || live - resting <= allowed);
}

void pool_core::notify_quiescence_locked() {
    if (quiescence_waiters_ != 0) quiescent_cv_.notify_all();
    for (worker* w : idle_waiting_workers_) {
        w->park_word.store(1, std::memory_order_release);
        unpark_one(w->park_word);
    }
}

/// S5a: sleeps on a worker's park word. The CAS 0 -> 2 announces the sleep; it fails when a
/// token (1) is already there, and the worker then never enters the kernel. notify_work's
/// exchange and this CAS are read-modify-writes of the same word, so one of them sees the other:
/// either the waker sees 2 and unparks, or the CAS sees 1 and does not sleep. Afterwards 2 goes
/// back to 0 by CAS, so that a re-park after a spurious return or a timeout starts over; a token
/// stored meanwhile makes that CAS fail and stays (relaxed: the caller reads the token with an
/// acquire load). Returns park()'s result: false when the deadline passed.
static bool sleep_on_token(std::atomic<std::uint32_t>& word, deadline_t deadline) noexcept {
    std::uint32_t expected = 0;
    // acquire on failure: the token's release store or exchange happens-before what follows.
    if (!word.compare_exchange_strong(expected, 2, std::memory_order_acquire,
                                      std::memory_order_acquire))
        return true;
    bool const in_time = detail::park(word, 2, deadline);
    expected = 2;
    word.compare_exchange_strong(expected, 0, std::memory_order_relaxed, std::memory_order_relaxed);
    return in_time;
}

void pool_core::notify_work(bool even_if_searching) {
    // S2: the task was published with a seq_cst store (the deque's bottom_ or the injection
    // queue's size_); these seq_cst loads follow it in the single total order. A worker that
    // registered as idle (seq_cst store of idle_count_) re-checks the queues with seq_cst loads.
    // One of the two sees the other, so a task is never left queued while every worker sleeps.
    if (!even_if_searching && searching_.load(std::memory_order_seq_cst) != 0)
        return;  // the searcher will find it
    if (idle_count_.load(std::memory_order_seq_cst) != 0) {
        worker* w = nullptr;
        std::uint32_t was = 0;
        {
            std::lock_guard lock(mu_);
            if (!idle_.empty()) {
                w = idle_.back();
                idle_.pop_back();
                w->in_idle_list = false;
                idle_count_.store(static_cast<std::uint32_t>(idle_.size()),
                                  std::memory_order_seq_cst);
                // S4b: the token is stored under mu_, so it cannot land after the worker
                // registers again (registration resets it under mu_). acq_rel: release for the
                // token; the old value says whether the worker is asleep in the kernel (S5a).
                was = w->park_word.exchange(1, std::memory_order_acq_rel);
            }
        }
        if (w) {
            // One sleeper per submission, and a system call only for a worker that is asleep:
            // one chosen between registering and sleeping sees the token in its S5a CAS. A
            // stale unpark is only a spurious wake-up. Worker objects live as long as the pool.
            if (was == 2) unpark_one(w->park_word);
            return;
        }
    }
    maybe_spawn();
}

void pool_core::maybe_spawn() {
    if (live_.load(std::memory_order_relaxed) >= opts_.max_workers) return;
    std::exception_ptr failure;
    {
        std::lock_guard lock(mu_);
        // stopping_: the pool drained after shutdown and its workers are leaving or gone; a
        // late notify of a task that already ran must not start a thread nobody joins.
        if (live_.load(std::memory_order_relaxed) >= opts_.max_workers || !idle_.empty() ||
            stopping_ || ext_state_.load(std::memory_order_acquire) == ext_broken)
            return;
        try {
            spawn_locked();
        } catch (...) {
            if (live_.load(std::memory_order_relaxed) == 0) failure = std::current_exception();
            // With live workers the queued task still runs; growth is best effort.
        }
    }
    if (failure) break_pool(failure, "could not start a worker thread");
}

void pool_core::spawn_locked() {
    std::size_t slot = 0;
    while (slot < opts_.max_workers) {
        worker* const w = slots_[slot].load(std::memory_order_relaxed);
        if (!w || !w->alive) break;
        ++slot;
    }
    if (slot == opts_.max_workers) return;  // every slot busy (live_ lags an exit)
    worker* w = slots_[slot].load(std::memory_order_relaxed);
    if (!w) {
        w = new worker;
        w->core = this;
        w->slot = slot;
        w->spin_window = opts_.spin;
        w->rng = static_cast<std::uint32_t>(slot * 2654435761u + 1);
        // release: thieves that load the slot see a constructed worker.
        slots_[slot].store(w, std::memory_order_release);
        if (slot + 1 > slot_count_.load(std::memory_order_relaxed))
            slot_count_.store(slot + 1, std::memory_order_release);
    } else if (w->thread.joinable()) {
        w->thread.join();  // the previous thread of this slot has already left the pool
    }
    std::size_t const index = created_;
    w->alive = true;
    live_.store(live_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    try {
        w->thread = std::thread(&pool_core::worker_main, shared_from_this(), w, index);
    } catch (...) {
        w->alive = false;
        live_.store(live_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
        throw;
    }
    ++created_;
}

void pool_core::worker_exit_locked(worker& w) {
    if (w.in_idle_list) {
        idle_.erase(std::find(idle_.begin(), idle_.end(), &w));
        w.in_idle_list = false;
        idle_count_.store(static_cast<std::uint32_t>(idle_.size()), std::memory_order_seq_cst);
    }
    w.alive = false;
    live_.store(live_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    notify_quiescence_locked();
    // L3: once the pool is closed or broken, an idle worker leaves when no other worker is
    // active. A worker leaving without going through park() (its initializer threw; the pool
    // was already broken) changes that count for the workers parked meanwhile: wake them so
    // they re-check instead of sleeping until keep_alive.
    if (ext_state_.load(std::memory_order_acquire) != ext_open) wake_all_locked();
}

pool_core::park_outcome pool_core::park(worker& w, task_base*& found) {
    {
        std::lock_guard lock(mu_);
        register_idle_locked(w);
    }
    // S4: re-check every queue after registering.
    if ((found = find_task(w))) {
        // S4c: if a waker chose us meanwhile, its task may still be queued: pass the wake on.
        if (leave_idle(w)) notify_work();
        return park_outcome::task;
    }
    bool may_time_out;
    {
        std::lock_guard lock(mu_);
        if (!w.in_idle_list) return park_outcome::woken;  // a waker chose us meanwhile
        // L3: after shutdown nothing new can reach the injection queue; tasks that running
        // tasks submit go to deques. Once no other worker is active (the pool is drained),
        // nothing can be submitted any more: every worker leaves. While others are still
        // active, idle workers stay to help with what those tasks submit.
        if (ext_state_.load(std::memory_order_acquire) != ext_open && injected_.empty() &&
            (stopping_ || live_.load(std::memory_order_relaxed) - parked_ <= 1)) {
            stopping_ = true;
            worker_exit_locked(w);
            wake_all_locked();
            return park_outcome::exit;
        }
        ++parked_;
        notify_quiescence_locked();
        may_time_out = live_.load(std::memory_order_relaxed) > opts_.min_workers;
    }
    auto const parked_at = clock::now();
    for (;;) {
        deadline_t deadline;
        if (may_time_out) deadline = deadline_after(opts_.keep_alive);
        bool const in_time = sleep_on_token(w.park_word, deadline);
        // acquire: pairs with the waker's release store of the token.
        if (w.park_word.load(std::memory_order_acquire) == 1) {
            // S3c: woken within an eighth of the spin window: a spin twice as long as this
            // sleep would have caught it, for about the CPU a park and a wake cost, so the
            // window comes back at that length (doubling from there while spinning pays off).
            // Longer gaps (a task every few tens of microseconds, with timer jitter) do not
            // turn spinning back on, and a one-off quick wake-up costs a short spin, not a
            // full window.
            std::chrono::nanoseconds const full = opts_.spin;
            std::chrono::nanoseconds const slept = clock::now() - parked_at;
            if (slept < full / 8) w.spin_window = std::clamp(2 * slept, full / 16, full);
            std::lock_guard lock(mu_);
            --parked_;
            return park_outcome::woken;
        }
        if (in_time) continue;  // spurious
        std::lock_guard lock(mu_);
        if (!w.in_idle_list) {  // chosen just now; the token is on its way
            --parked_;
            return park_outcome::woken;
        }
        if (live_.load(std::memory_order_relaxed) > opts_.min_workers) {
            // L4: idle for keep_alive: leave, down to min_workers.
            --parked_;
            worker_exit_locked(w);
            return park_outcome::exit;
        }
        may_time_out = false;
    }
}

void pool_core::worker_main(std::shared_ptr<pool_core> keep, worker* w, std::size_t index) {
    pool_core& core = *keep;
    std::string const name = core.prefix_ + "_" + std::to_string(index);
#if defined(__linux__)
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
#endif
    bool ok = true;
    if (core.opts_.initializer) {
        try {
            core.opts_.initializer();
        } catch (...) {
            ok = false;
            core.break_pool(std::current_exception(), "a worker's initializer threw");
        }
    }
    if (!ok) {
        std::lock_guard lock(core.mu_);
        core.worker_exit_locked(*w);
    } else {
        // Set after the initializer: a wait inside the initializer must not run queued tasks
        // (they must see the initializer's effects).
        tls_worker = w;
        bool woken = false;
        for (;;) {
            task_base* t = core.find_task(*w);
            // S3b for woken workers: a worker woken for one task hands the wake on when more
            // work is visible, as a searcher does (the submitter of that work may have seen a
            // searcher, or this worker, and woken nobody else).
            if (t && woken && core.work_visible()) core.notify_work();
            woken = false;
            if (!t) t = core.search(*w);
            if (!t) {
                park_outcome const r = core.park(*w, t);
                if (r == park_outcome::exit) break;
                if (r == park_outcome::woken) {
                    woken = true;
                    continue;
                }
            }
            core.run_task(*w, t);
        }
    }
    tls_worker = nullptr;
    // `keep` may be the last reference: the core is then destroyed here, on this thread, and
    // its destructor detaches this thread instead of joining it.
}

// ---- waiting -----------------------------------------------------------------------------------

bool pool_core::help_wait(worker& w, wait_target& target, deadline_t deadline) {
    unsigned idle_rounds = 0;
    for (;;) {
        if (target.ready()) return true;
        // The deadline first: a zero timeout polls and never runs other tasks (Python items
        // 17, 19). A task started before the deadline may end after it (a known limit).
        if (deadline && clock::now() >= *deadline) return target.ready();
        // H1: run other work while the awaited condition does not hold: own deque, then the
        // injection queue, then steal. This is what makes recursive fork-join finish on one
        // worker.
        if (task_base* t = find_task(w)) {
            idle_rounds = 0;
            run_task(w, t);
            continue;
        }
        if (++idle_rounds < 64) {  // H2: the awaited work may be about to finish elsewhere
            spin_pause();
            continue;
        }
        idle_rounds = 0;
        // H3: park until the target hands us a token or a submitter picks us from the idle
        // list (new work to help with).
        {
            std::lock_guard lock(mu_);
            register_idle_locked(w);
        }
        if (!target.arm(&w.park_word)) {
            if (leave_idle(w)) notify_work();  // S4c
            return true;
        }
        task_base* t = find_task(w);
        if (!t && !target.ready()) sleep_on_token(w.park_word, deadline);
        bool const chosen = leave_idle(w);
        target.disarm(&w.park_word);
        if (t) {
            if (chosen) notify_work();  // S4c: we run our own find, not the waker's task
            run_task(w, t);
        } else if (chosen) {
            // S4c: look for the waker's task now (the loop would return first if the target
            // became ready meanwhile), and pass the wake on if someone else already took it.
            if (task_base* t2 = find_task(w)) run_task(w, t2);
            else notify_work();
        }
    }
}

void pool_core::wait_idle() {
    worker* const w = current_worker();
    if (!w) {
        std::unique_lock lock(mu_);
        ++quiescence_waiters_;
        quiescent_cv_.wait(lock, [&] { return quiescent_locked(false); });
        --quiescence_waiters_;
        return;
    }
    // From one of our own tasks: help until everything but the calling task is done.
    for (;;) {
        if (task_base* t = find_task(*w)) {
            run_task(*w, t);
            continue;
        }
        {
            std::lock_guard lock(mu_);
            if (quiescent_locked(true)) return;
            ++idle_helpers_;
            notify_quiescence_locked();  // others in wait_idle may now be satisfied
            idle_waiting_workers_.push_back(w);
            register_idle_locked(*w);
        }
        task_base* t = find_task(*w);
        if (!t) sleep_on_token(w->park_word, std::nullopt);
        {
            std::lock_guard lock(mu_);
            --idle_helpers_;
            idle_waiting_workers_.erase(
                std::find(idle_waiting_workers_.begin(), idle_waiting_workers_.end(), w));
        }
        if (leave_idle(*w) && t) notify_work();  // S4c
        if (t) run_task(*w, t);
    }
}

// ---- shutdown, termination, breaking -------------------------------------------------------

template <class OnTask>
void pool_core::drain(OnTask&& on_task) {
    std::size_t n = 0;
    task_base* t = injected_.pop_all(n);
    while (t) {
        task_base* const next = t->next_;
        on_task(t);
        t = next;
    }
    std::size_t const count = slot_count_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < count; ++i) {
        worker* const w = slots_[i].load(std::memory_order_acquire);
        if (!w) continue;
        while (!w->deque.empty()) {
            if (task_base* s = w->deque.steal()) on_task(s);
            else std::this_thread::yield();  // lost a race with the owner or another thief
        }
    }
}

void pool_core::cancel_queued() {
    drain([this](task_base* t) {
        on_dequeued();
            if (t->try_cancel()) extra_cancelled_.fetch_add(1, std::memory_order_relaxed);
        t->release();
    });
}

void pool_core::break_pool(std::exception_ptr cause, const char* what_happened) {
    std::string reason;
    {
        std::lock_guard lock(mu_);
        if (!broken_reason_.empty()) return;  // the first cause wins
        broken_reason_ = pool_label(prefix_) + " is broken: " + what_happened + " (" +
                         describe_exception(cause) +
                         "); pending tasks failed; fix the cause and create a new pool";
        reason = broken_reason_;
        // release: a submitter that reads ext_broken also sees broken_reason_ (read under mu_).
        ext_state_.store(ext_broken, std::memory_order_release);
        internal_closed_.store(true, std::memory_order_release);
    }
    injected_.mark_broken();
    report_unhandled(id_, cause, what_happened);
    // Python items 74/80: queued futures fail with broken_pool (each its own instance); tasks
    // already running on other workers finish normally.
    drain([&](task_base* t) {
        on_dequeued();
            if (t->try_start()) {
            t->ops_->fail(t, std::make_exception_ptr(broken_pool(reason)));
            extra_failed_.fetch_add(1, std::memory_order_relaxed);
        }
        t->release();
    });
    {
        std::lock_guard lock(mu_);
        wake_all_locked();
        notify_quiescence_locked();
    }
    std::lock_guard lock(space_mu_);
    space_cv_.notify_all();
}

void pool_core::join_workers() {
    std::vector<std::thread> threads;
    {
        std::unique_lock lock(mu_);
        ++quiescence_waiters_;
        // L5: no live worker and nothing queued. A task pushed just before the close still
        // gets a worker: its submitter spawns one after the push.
        quiescent_cv_.wait(lock, [&] {
            return live_.load(std::memory_order_relaxed) == 0 && injected_.empty();
        });
        --quiescence_waiters_;
        std::size_t const n = slot_count_.load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < n; ++i) {
            worker* const w = slots_[i].load(std::memory_order_relaxed);
            if (w && w->thread.joinable()) threads.push_back(std::move(w->thread));
        }
    }
    for (auto& t : threads) t.join();
}

void pool_core::shutdown(shutdown_options options) {
    // L1: close the injection queue; after this no outside submission can be queued.
    if (injected_.close()) {
        int expected = ext_open;
        ext_state_.compare_exchange_strong(expected, ext_closed, std::memory_order_acq_rel);
    }
    if (options.cancel_pending) {
        internal_closed_.store(true, std::memory_order_release);
        cancel_queued();  // L2
    }
    {
        std::lock_guard lock(mu_);
        wake_all_locked();  // idle workers re-check and leave (L3)
        notify_quiescence_locked();
    }
    {
        std::lock_guard lock(space_mu_);
        space_cv_.notify_all();  // blocked submitters see the close
    }
    // W13: a task cannot wait for itself; from a worker, shutdown does not block.
    if (options.wait && !current_worker()) join_workers();
}

void pool_core::terminate() {
    shutdown({.wait = false, .cancel_pending = true});
    stop_.request_stop();  // running tasks that take a stop_token see it
    if (!current_worker()) join_workers();
}

pool_stats pool_core::stats() const {
    pool_stats s;
    s.completed = extra_completed_.load(std::memory_order_relaxed);
    s.failed = extra_failed_.load(std::memory_order_relaxed);
    s.cancelled = extra_cancelled_.load(std::memory_order_relaxed);
    std::size_t in_deques = 0;
    std::size_t const n = slot_count_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
        worker const* w = slots_[i].load(std::memory_order_acquire);
        if (!w) continue;
        s.completed += w->completed.load(std::memory_order_relaxed);
        s.failed += w->failed.load(std::memory_order_relaxed);
        s.cancelled += w->cancelled.load(std::memory_order_relaxed);
        s.running += w->running.load(std::memory_order_relaxed);
        in_deques += static_cast<std::size_t>(w->deque.size_hint());
    }
    s.queued = opts_.queue_capacity ? queued_.load(std::memory_order_relaxed)
                                    : injected_.size() + in_deques;
    std::lock_guard lock(mu_);
    s.workers = live_.load(std::memory_order_relaxed);
    s.idle = parked_;
    return s;
}

// ---- entry points used by the public templates ------------------------------------------------

std::shared_ptr<pool_core> make_pool_core(thread_pool_options options) {
    return std::make_shared<pool_core>(std::move(options));
}
std::uint32_t pool_id(const pool_core& core) noexcept { return core.id(); }
std::size_t pool_max_workers(const pool_core& core) noexcept { return core.max_workers(); }
void pool_enqueue(pool_core& core, task_base* task) { core.enqueue(task); }
void pool_enqueue_bulk(pool_core& core, task_base* const* tasks, std::size_t count) {
    core.enqueue_bulk(tasks, count);
}
bool on_worker_of(const pool_core& core) noexcept { return core.current_worker() != nullptr; }

bool wait_for_target(wait_target& target, deadline_t deadline) {
    if (target.ready()) return true;
    if (worker* const w = tls_worker) return w->core->help_wait(*w, target, deadline);
    return target.block(deadline);
}

bool wait_task(task_base& task, deadline_t deadline) {
    if (task.done()) return true;
    task_target target(task);
    return wait_for_target(target, deadline);
}

}  // namespace muster::detail

namespace muster {
std::size_t default_max_workers() noexcept { return detail::muster_default_workers(); }
}  // namespace muster
