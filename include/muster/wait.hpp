// muster/wait.hpp: muster::wait and muster::as_completed over sets of futures.
//
// Both register one waiter object on the whole set (one hook per future, all inside the one
// allocation), so waiting on N futures costs O(N) in total, with no polling. They work on
// futures of any executor. Waits made on a pool worker run other tasks meanwhile.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <optional>
#include <ranges>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "muster/detail/pull_iterator.hpp"
#include "muster/detail/wait_target.hpp"
#include "muster/error.hpp"
#include "muster/future.hpp"

namespace muster {

/// When muster::wait returns (Python's FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class return_when {
    first_completed,  ///< as soon as any future is done (finished or cancelled)
    first_exception,  ///< as soon as any future holds an exception; else when all are done
    all_completed,    ///< when every future is done
};

/// The result of muster::wait: the distinct input futures, split by whether they were done
/// when the wait returned.
template <class T>
struct wait_result {
    std::vector<future<T>> done;
    std::vector<future<T>> not_done;
};

namespace detail {

/// Throws invalid_argument unless `when` is one of the three enumerators (checked eagerly,
/// Python weakness W14).
void check_return_when(return_when when);
[[noreturn]] void throw_as_completed_timeout(std::size_t unfinished, std::size_t total);

/// Collects the distinct valid futures of a range, in first-seen order (Python items 30, 37).
template <class T, class Range>
std::vector<future<T>> distinct_futures(Range&& futures) {
    std::vector<future<T>> out;
    std::unordered_set<const task_base*> seen;
    for (auto&& f : futures) {
        const task_base* const t = future_access::task(f);
        if (!t) throw invalid_argument("muster::wait/as_completed: a future in the input has no task");
        if (seen.insert(t).second) out.push_back(f);
    }
    return out;
}

/// One waiter for a whole set of futures: a hook per future, a queue of indices in completion
/// order, and counters for the return_when conditions. Reference-counted: the owner holds one
/// reference and every hook still registered on a task holds one, so a hook firing after the
/// owner gave up touches live memory.
template <class T>
class multi_waiter {
public:
    multi_waiter(std::vector<future<T>> futures, return_when when)
        : futures_(std::move(futures)), links_(futures_.size()), when_(when) {
        for (std::size_t i = 0; i < futures_.size(); ++i) {
            links_[i].owner = this;
            links_[i].index = i;
        }
    }

    /// Registers the hooks; futures already done are queued first, in input order (item 29).
    void start() {
        for (std::size_t i = 0; i < futures_.size(); ++i) {
            task_base* const t = future_access::task(futures_[i]);
            links_[i].task = t;
            refs_.fetch_add(1, std::memory_order_relaxed);  // the hook's reference
            if (t->add_hook(&links_[i], /*front=*/true)) {
                links_[i].registered = true;
            } else {
                refs_.fetch_sub(1, std::memory_order_relaxed);
                std::lock_guard lock(n_.mu);
                record_locked(i, *t);
            }
        }
    }

    /// Unregisters every hook that has not fired and drops the owner's reference; the waiter
    /// is freed once no hook refers to it.
    void finish() {
        for (std::size_t i = 0; i < links_.size(); ++i) {
            // A link still registered belongs to a future the caller has not taken (wait()
            // keeps the taken ones alive in its result; as_completed unregisters at pop).
            if (!links_[i].registered) continue;
            if (links_[i].task->remove_hook(&links_[i])) release();
        }
        release();
    }

    std::vector<future<T>>& futures() { return futures_; }
    std::size_t total() const { return futures_.size(); }

    /// Pops the next completed index, if any.
    std::optional<std::size_t> pop_ready() {
        std::lock_guard lock(n_.mu);
        if (ready_.empty()) return std::nullopt;
        std::size_t const i = ready_.front();
        ready_.pop_front();
        // The hook has fired (it queued i), so finish() must not touch the task: the caller
        // may drop the future, and with it the task, right away.
        links_[i].registered = false;
        return i;
    }

    /// Waits until the return_when condition holds; returns whether it does.
    bool wait_condition(deadline_t deadline) {
        return wait_on(n_, deadline, [this] {
            if (completed_ == futures_.size()) return true;
            switch (when_) {
                case return_when::first_completed: return completed_ > 0;
                case return_when::first_exception: return failed_ > 0;
                case return_when::all_completed: return false;
            }
            return false;
        });
    }

    /// Waits until a completed index is queued; returns whether one is.
    bool wait_ready(deadline_t deadline) {
        return wait_on(n_, deadline, [this] { return !ready_.empty(); });
    }

private:
    struct link final : completion_hook {
        multi_waiter* owner = nullptr;
        task_base* task = nullptr;
        std::size_t index = 0;
        bool registered = false;  // hook on the task's list; owner thread only
        void on_complete(task_base& t) noexcept override {
            multi_waiter* const w = owner;
            {
                std::lock_guard lock(w->n_.mu);
                w->record_locked(index, t);
            }
            w->release();
        }
    };

    void record_locked(std::size_t i, task_base& t) {
        ++completed_;
        if (t.phase() == st_error) ++failed_;
        ready_.push_back(i);
        n_.signal_locked();
    }
    void release() {
        // acq_rel: the last release sees every hook's writes before freeing.
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    std::vector<future<T>> futures_;
    std::vector<link> links_;
    return_when when_;
    std::atomic<std::uint32_t> refs_{1};
    notifier n_;
    // Guarded by n_.mu.
    std::deque<std::size_t> ready_;
    std::size_t completed_ = 0;
    std::size_t failed_ = 0;
};

}  // namespace detail

/// Waits until the futures in `futures` satisfy `when`, or until `timeout` (from this call)
/// passes; never throws on timeout (Python items 37-47). Duplicates are removed. Returns the
/// distinct futures split into done and not_done as of the return. A cancelled future counts
/// as done at once (Python weakness W1 fixed). Throws invalid_argument for an unknown `when`
/// or a future without a task. Thread-safe; on a pool worker it runs other tasks while it
/// waits. O(N) for N futures.
template <std::ranges::input_range Range,
          class T = typename std::ranges::range_value_t<Range>::value_type>
wait_result<T> wait(Range&& futures, return_when when = return_when::all_completed,
                    std::optional<std::chrono::steady_clock::duration> timeout = std::nullopt) {
    detail::check_return_when(when);
    detail::deadline_t deadline;
    if (timeout) deadline = detail::deadline_after(*timeout);
    auto distinct = detail::distinct_futures<T>(std::forward<Range>(futures));
    wait_result<T> out;
    if (distinct.empty()) return out;
    auto* waiter = new detail::multi_waiter<T>(std::move(distinct), when);
    waiter->start();
    waiter->wait_condition(deadline);
    for (auto& f : waiter->futures()) (f.done() ? out.done : out.not_done).push_back(std::move(f));
    waiter->finish();
    return out;
}

template <class T>
wait_result<T> wait(std::initializer_list<future<T>> futures,
                    return_when when = return_when::all_completed,
                    std::optional<std::chrono::steady_clock::duration> timeout = std::nullopt) {
    return muster::wait(std::vector<future<T>>(futures), when, timeout);
}

/// The range returned by as_completed(): yields each distinct input future once, those already
/// done first, then in completion order. Move-only; one consumer.
template <class T>
class as_completed_range {
public:
    as_completed_range(std::vector<future<T>> futures, detail::deadline_t deadline)
        : deadline_(deadline) {
        if (futures.empty()) return;
        waiter_ = new detail::multi_waiter<T>(std::move(futures), return_when::first_completed);
        waiter_->start();
    }
    as_completed_range(as_completed_range&& other) noexcept
        : waiter_(std::exchange(other.waiter_, nullptr)),
          deadline_(other.deadline_),
          yielded_(other.yielded_),
          at_end_(other.at_end_),
          current_(std::move(other.current_)) {}
    as_completed_range& operator=(as_completed_range&&) = delete;
    ~as_completed_range() {
        // Item 35: the waiter unregisters from every future it has not yielded.
        if (waiter_) waiter_->finish();
    }

    using iterator = detail::pull_iterator<as_completed_range, future<T>&>;

    /// Fetches the first future (blocking until one is done); throws timeout_error when the
    /// deadline passes first.
    iterator begin() {
        advance();
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }
    /// Whether iteration has ended.
    bool exhausted() const noexcept { return this->at_end_; }

private:
    friend class detail::pull_iterator<as_completed_range, future<T>&>;
    void advance() {
        current_ = future<T>();
        if (!waiter_ || yielded_ == waiter_->total()) {
            at_end_ = true;
            return;
        }
        auto next = waiter_->pop_ready();
        if (!next) {
            if (!waiter_->wait_ready(deadline_)) {
                detail::throw_as_completed_timeout(waiter_->total() - yielded_, waiter_->total());
            }
            next = waiter_->pop_ready();
        }
        ++yielded_;
        // Item 35: hand the future over and keep no reference to it.
        current_ = std::move(waiter_->futures()[*next]);
    }

    future<T>& current() { return current_; }

    detail::multi_waiter<T>* waiter_ = nullptr;
    detail::deadline_t deadline_;
    std::size_t yielded_ = 0;
    bool at_end_ = false;
    future<T> current_;
};

/// Yields each distinct future of `futures` once, as it completes: those already done when
/// called come first (Python items 28-36). When `timeout` (measured from this call, Python
/// weakness W3 fixed) passes with futures still unfinished, advancing throws timeout_error
/// "N (of M) futures unfinished"; the futures are not changed. Dropping the range unregisters
/// it from every future. On a pool worker, advancing runs other tasks while it waits.
template <std::ranges::input_range Range,
          class T = typename std::ranges::range_value_t<Range>::value_type>
as_completed_range<T> as_completed(
    Range&& futures, std::optional<std::chrono::steady_clock::duration> timeout = std::nullopt) {
    detail::deadline_t deadline;
    if (timeout) deadline = detail::deadline_after(*timeout);
    return as_completed_range<T>(detail::distinct_futures<T>(std::forward<Range>(futures)),
                                 deadline);
}

template <class T>
as_completed_range<T> as_completed(
    std::initializer_list<future<T>> futures,
    std::optional<std::chrono::steady_clock::duration> timeout = std::nullopt) {
    return muster::as_completed(std::vector<future<T>>(futures), timeout);
}

}  // namespace muster
