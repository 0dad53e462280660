// muster/map.hpp: thread_pool::map and thread_pool::map_unordered, lazy ranges of results.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <utility>

#include "muster/completion_queue.hpp"
#include "muster/detail/pull_iterator.hpp"
#include "muster/error.hpp"
#include "muster/future.hpp"
#include "muster/thread_pool.hpp"

namespace muster {

namespace detail {
[[noreturn]] void throw_map_timeout(std::size_t in_flight);
std::size_t map_buffersize(const map_options& options, std::size_t max_workers);

template <class Fn, class View>
using map_result_t = task_result_t<Fn&, std::ranges::range_value_t<View>>;

/// What map and map_unordered share: the pool, the callable, the input and the deadline.
template <class Fn, class View>
class map_base {
protected:
    using T = map_result_t<Fn, View>;
    static_assert(!std::is_void_v<T>,
                  "muster::thread_pool::map needs a callable that returns a value; for "
                  "side effects only, use submit() and muster::wait, or post()");

    map_base(std::shared_ptr<pool_core> core, Fn f, View input, deadline_t deadline)
        : core_(std::move(core)),
          f_(std::move(f)),
          input_(std::make_unique<View>(std::move(input))),
          it_(std::ranges::begin(*input_)),
          deadline_(deadline) {}

    /// Submits the next input element, if any; returns its future. Throws what submit throws
    /// (shutdown_error after the pool was shut down: a map never truncates silently).
    std::optional<future<T>> pull_one() {
        if (it_ == std::ranges::end(*input_)) return std::nullopt;
        auto fut = submit_to(*core_, f_, *it_);
        ++it_;
        return fut;
    }

    /// Starts a step of iteration: drops the previous element; returns false (iteration over)
    /// once the deadline has passed.
    bool begin_step() {
        current_.reset();
        front_ = future<T>();
        if (finished_) at_end_ = true;
        return !finished_;
    }

public:
    std::default_sentinel_t end() const noexcept { return {}; }
    /// Whether iteration has ended.
    bool exhausted() const noexcept { return at_end_; }

protected:
    std::shared_ptr<pool_core> core_;  // shared: the range keeps the scheduler alive
    Fn f_;
    std::unique_ptr<View> input_;      // heap: iterators into it survive moves of the range
    std::ranges::iterator_t<View> it_;
    deadline_t deadline_;
    bool finished_ = false;  // deadline passed: no more elements
    bool at_end_ = false;
    std::optional<T> current_;
    future<T> front_;
};
}  // namespace detail

/// The lazy range returned by thread_pool::map: results in input order. One consumer; not
/// thread-safe. Dropping it cancels the tasks that have not started (always, Python W4 fixed).
template <class Fn, class View>
class map_range : detail::map_base<Fn, View> {
    using base = detail::map_base<Fn, View>;
    using typename base::T;

public:
    using value_type = T;

    map_range(std::shared_ptr<detail::pool_core> core, Fn f, View input, std::size_t buffersize,
              detail::deadline_t deadline)
        : base(std::move(core), std::move(f), std::move(input), deadline) {
        // Python item 59: the call itself submits min(buffersize, n) tasks.
        for (std::size_t i = 0; i < buffersize; ++i) {
            auto f2 = this->pull_one();
            if (!f2) break;
            inflight_.push_back(std::move(*f2));
        }
    }
    map_range(map_range&&) noexcept = default;
    map_range& operator=(map_range&&) = delete;
    ~map_range() {
        // The element the iterator points at may not have been read yet: it is pending too.
        if (this->front_.valid()) this->front_.cancel();
        cancel_rest();
    }

    /// Dereferencing waits for the element: its value, its task's exception rethrown, or
    /// timeout_error when the map's deadline passes first.
    using iterator = detail::pull_iterator<map_range, T&>;

    iterator begin() {
        advance();
        return iterator(this);
    }
    using base::end;
    using base::exhausted;

private:
    friend class detail::pull_iterator<map_range, T&>;
    void advance() {
        if (!this->begin_step()) return;
        // Python item 59: each step first pulls and submits one more input, then waits for the
        // oldest result.
        if (auto f = this->pull_one()) inflight_.push_back(std::move(*f));
        if (inflight_.empty()) {
            this->at_end_ = true;
            return;
        }
        this->front_ = std::move(inflight_.front());
        inflight_.pop_front();
    }

    T& current() {
        if (!this->current_) {
            if (this->front_.wait_until(this->deadline_.value_or(detail::clock::time_point::max())) !=
                std::future_status::ready) {
                // Python item 52: the awaited task and every later one are cancelled and the
                // iteration ends.
                std::size_t const n = inflight_.size() + 1;
                this->front_.cancel();
                cancel_rest();
                this->finished_ = true;
                detail::throw_map_timeout(n);
            }
            this->current_.emplace(std::move(this->front_).result());
        }
        return *this->current_;
    }

    void cancel_rest() {
        for (auto& f : inflight_)
            if (f.valid()) f.cancel();
        inflight_.clear();
    }

    std::deque<future<T>> inflight_;
};

/// The lazy range returned by thread_pool::map_unordered: results in completion order, with
/// map's input discipline. One consumer; dropping it cancels tasks that have not started.
template <class Fn, class View>
class map_unordered_range : detail::map_base<Fn, View> {
    using base = detail::map_base<Fn, View>;
    using typename base::T;

public:
    using value_type = T;

    map_unordered_range(std::shared_ptr<detail::pool_core> core, Fn f, View input,
                        std::size_t buffersize, detail::deadline_t deadline)
        : base(std::move(core), std::move(f), std::move(input), deadline),
          done_(std::make_unique<completion_queue<T, std::size_t>>()) {
        for (std::size_t i = 0; i < buffersize; ++i)
            if (!pull()) break;
    }
    map_unordered_range(map_unordered_range&&) noexcept = default;
    map_unordered_range& operator=(map_unordered_range&&) = delete;
    ~map_unordered_range() {
        if (done_) done_->cancel_pending();
    }

    using iterator = detail::pull_iterator<map_unordered_range, T&>;

    /// Waits for the first completed element; throws timeout_error if the deadline passes first.
    iterator begin() {
        advance();
        return iterator(this);
    }
    using base::end;
    using base::exhausted;

private:
    friend class detail::pull_iterator<map_unordered_range, T&>;
    bool pull() {
        auto f = this->pull_one();
        if (!f) return false;
        done_->add(index_++, std::move(*f));
        return true;
    }

    void advance() {
        if (!this->begin_step()) return;
        pull();
        if (done_->empty()) {
            this->at_end_ = true;
            return;
        }
        std::optional<tagged_future<T, std::size_t>> next;
        if (this->deadline_) {
            auto const left = *this->deadline_ - detail::clock::now();
            next = done_->pop_for(left);
        } else {
            next = done_->pop();
        }
        if (!next) {
            std::size_t const n = done_->pending();
            done_->cancel_pending();
            this->finished_ = true;
            detail::throw_map_timeout(n);
        }
        this->front_ = std::move(next->future);
    }

    T& current() {
        if (!this->current_) this->current_.emplace(std::move(this->front_).result());
        return *this->current_;
    }

    std::unique_ptr<completion_queue<T, std::size_t>> done_;
    std::size_t index_ = 0;
};

template <class F, class Range>
auto thread_pool::map(F&& f, Range&& input, map_options options) {
    std::size_t const b = detail::map_buffersize(options, max_workers());
    detail::deadline_t deadline;
    if (options.timeout) deadline = detail::deadline_after(*options.timeout);
    auto view = std::views::all(std::forward<Range>(input));
    using range = map_range<std::decay_t<F>, decltype(view)>;
    return range(core_, std::forward<F>(f), std::move(view), b, deadline);
}

template <class F, class Range>
auto thread_pool::map_unordered(F&& f, Range&& input, map_options options) {
    std::size_t const b = detail::map_buffersize(options, max_workers());
    detail::deadline_t deadline;
    if (options.timeout) deadline = detail::deadline_after(*options.timeout);
    auto view = std::views::all(std::forward<Range>(input));
    using range = map_unordered_range<std::decay_t<F>, decltype(view)>;
    return range(core_, std::forward<F>(f), std::move(view), b, deadline);
}

}  // namespace muster
