// muster/completion_queue.hpp: tagged results in completion order.
//
// The hand-written pools' result and error queues, pip threadpool's poll(), and "callback(tag)":
// submit work under a tag, then take (tag, future) pairs as the tasks complete, wait for the
// result of one tag, or collect the successes and the failures separately.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "muster/detail/wait_target.hpp"
#include "muster/error.hpp"
#include "muster/future.hpp"

namespace muster {

/// A tagged completion: the tag it was added with and its (done) future.
template <class T, class Tag>
struct tagged_future {
    Tag tag;
    muster::future<T> future;
};

/// A queue that receives futures as they complete, each with a tag.
///
/// add() (or submit()) watches a future; when it completes (value, exception or cancellation)
/// the pair moves to the ready list, in completion order. Consumers pop pairs, wait for one
/// tag, or drain successes and failures separately. Works with futures of any executor.
///
/// Thread-safe: any number of producers and consumers. Blocking members called on a pool worker
/// run other tasks while they wait. Destroying the queue while futures are pending is safe:
/// their completions are then dropped (the futures themselves are unaffected).
template <class T, class Tag = std::size_t>
class completion_queue {
public:
    using entry = tagged_future<T, Tag>;

    completion_queue() : state_(std::make_shared<state>()) {}
    completion_queue(const completion_queue&) = delete;
    completion_queue& operator=(const completion_queue&) = delete;

    /// Watches `f` under `tag`. If `f` is already done, the pair is ready at once. One
    /// allocation. Throws invalid_argument if `f` has no task.
    void add(Tag tag, future<T> f) {
        auto* task = detail::future_access::task(f);
        if (!task) throw invalid_argument("muster::completion_queue::add: the future has no task");
        // The hook counts itself as pending and links into the pending list in one critical
        // section, so a concurrent pop() never sees the list and the count disagree.
        auto* h = new hook(state_, std::move(tag), std::move(f));
        if (!task->add_hook(h)) h->on_complete(*task);
    }

    /// Submits `f(args...)` to `executor` and watches its future under `tag`; returns the future.
    template <class Executor, class F, class... Args>
    future<T> submit(Executor& executor, Tag tag, F&& f, Args&&... args) {
        future<T> fut = executor.submit(std::forward<F>(f), std::forward<Args>(args)...);
        add(std::move(tag), fut);
        return fut;
    }

    /// Removes and returns the earliest completed pair, or nothing if none is ready.
    std::optional<entry> try_pop() {
        std::lock_guard lock(state_->n.mu);
        return state_->pop_locked();
    }

    /// Blocks until a pair is ready and returns it. Throws muster::error if nothing is ready and
    /// nothing is pending (it would block forever).
    entry pop() {
        auto e = pop_until(std::nullopt);
        return std::move(*e);
    }

    /// As pop(), but returns nothing if no pair is ready within `timeout`.
    template <class Rep, class Period>
    std::optional<entry> pop_for(std::chrono::duration<Rep, Period> timeout) {
        return pop_until(detail::deadline_after(timeout));
    }

    /// Blocks until the future added under `tag` has completed, removes that pair from the queue
    /// and returns its future (so result() does not block). If several pending futures share
    /// the tag, the first to complete is returned. Throws invalid_argument if no future with
    /// this tag is pending or ready.
    future<T> wait_for_tag(const Tag& tag) {
        {
            std::lock_guard lock(state_->n.mu);
            if (!state_->has_ready_locked(tag) && !state_->has_pending_locked(tag))
                throw invalid_argument(
                    "muster::completion_queue::wait_for_tag: no pending or ready future has this "
                    "tag (it was never added, or was already taken)");
        }
        for (;;) {
            // Ready when the tag is ready, or when it can no longer become ready (another
            // consumer took it, or it was never pending here).
            detail::wait_on(state_->n, std::nullopt, [&] {
                return state_->has_ready_locked(tag) || !state_->has_pending_locked(tag);
            });
            std::lock_guard lock(state_->n.mu);
            if (auto f = state_->take_tag_locked(tag)) return std::move(*f);
            if (!state_->has_pending_locked(tag))
                throw error(
                    "muster::completion_queue::wait_for_tag: another consumer took the pair for "
                    "this tag first");
        }
    }

    /// Blocks until nothing is pending (every added future has completed).
    void wait_all() {
        detail::wait_on(state_->n, std::nullopt, [&] { return state_->pending_ == 0; });
    }

    /// Removes every ready pair that succeeded and returns (tag, value) pairs in completion
    /// order; ready failures stay for take_errors(). Values are copied (other handles to the
    /// task keep theirs); move-only values are moved out. Does not block. For T = void, returns
    /// the tags.
    auto take_results() {
        std::lock_guard lock(state_->n.mu);
        if constexpr (std::is_void_v<T>) {
            std::vector<Tag> out;
            state_->take_if_locked([](const future<T>& f) { return succeeded(f); },
                                   [&](entry& e) { out.push_back(std::move(e.tag)); });
            return out;
        } else {
            std::vector<std::pair<Tag, T>> out;
            state_->take_if_locked([](const future<T>& f) { return succeeded(f); },
                                   [&](entry& e) {
                                       // Copy where possible: the caller's own handles to the
                                       // task keep their value. Move-only values move.
                                       if constexpr (std::is_copy_constructible_v<T>)
                                           out.emplace_back(std::move(e.tag), e.future.result());
                                       else
                                           out.emplace_back(std::move(e.tag),
                                                            std::move(e.future).result());
                                   });
            return out;
        }
    }

    /// Removes every ready pair that failed or was cancelled and returns (tag, exception) pairs
    /// in completion order (a cancelled_error for cancelled ones). Does not block.
    std::vector<std::pair<Tag, std::exception_ptr>> take_errors() {
        std::vector<std::pair<Tag, std::exception_ptr>> out;
        std::lock_guard lock(state_->n.mu);
        state_->take_if_locked([](const future<T>& f) { return !succeeded(f); },
                               [&](entry& e) {
                                   std::exception_ptr ep;
                                   try {
                                       ep = e.future.exception();
                                   } catch (...) {
                                       ep = std::current_exception();  // cancelled_error
                                   }
                                   out.emplace_back(std::move(e.tag), std::move(ep));
                               });
        return out;
    }

    /// Futures added and not yet completed.
    std::size_t pending() const {
        std::lock_guard lock(state_->n.mu);
        return state_->pending_;
    }
    /// Completed pairs not yet taken.
    std::size_t ready() const {
        std::lock_guard lock(state_->n.mu);
        return state_->ready_.size();
    }
    /// Nothing pending and nothing ready.
    bool empty() const {
        std::lock_guard lock(state_->n.mu);
        return state_->pending_ == 0 && state_->ready_.empty();
    }

    /// Cancels every pending future that has not started; returns how many were cancelled.
    /// Their pairs become ready (as cancelled), as with any completion.
    std::size_t cancel_pending() {
        std::vector<future<T>> targets;
        {
            std::lock_guard lock(state_->n.mu);
            for (hook* h = state_->pending_list_; h; h = h->next_pending) targets.push_back(h->fut);
        }
        std::size_t n = 0;
        for (auto& f : targets)
            if (detail::future_access::cancel_pending(f)) ++n;
        return n;
    }

private:
    static bool succeeded(const future<T>& f) { return f.done() && !f.cancelled() && !f.exception(); }

    struct hook;

    struct state {
        detail::notifier n;
        std::size_t pending_ = 0;       // guarded by n.mu
        std::deque<entry> ready_;       // guarded by n.mu
        hook* pending_list_ = nullptr;  // guarded by n.mu (for cancel_pending and tags)

        void push_locked(entry e) {
            ready_.push_back(std::move(e));
            --pending_;
            n.signal_locked();
        }
        std::optional<entry> pop_locked() {
            if (ready_.empty()) return std::nullopt;
            entry e = std::move(ready_.front());
            ready_.pop_front();
            return e;
        }
        bool has_ready_locked(const Tag& tag) const {
            for (auto& e : ready_)
                if (e.tag == tag) return true;
            return false;
        }
        bool has_pending_locked(const Tag& tag) const {
            for (hook* h = pending_list_; h; h = h->next_pending)
                if (h->tag == tag) return true;
            return false;
        }
        std::optional<future<T>> take_tag_locked(const Tag& tag) {
            for (auto it = ready_.begin(); it != ready_.end(); ++it) {
                if (it->tag == tag) {
                    future<T> f = std::move(it->future);
                    ready_.erase(it);
                    return f;
                }
            }
            return std::nullopt;
        }
        template <class Pred, class Sink>
        void take_if_locked(Pred pred, Sink sink) {
            for (auto it = ready_.begin(); it != ready_.end();) {
                if (pred(it->future)) {
                    sink(*it);
                    it = ready_.erase(it);
                } else {
                    ++it;
                }
            }
        }
    };

    struct hook final : detail::completion_hook {
        std::shared_ptr<state> st;
        Tag tag;
        future<T> fut;
        hook* next_pending = nullptr;
        hook* prev_pending = nullptr;
        hook(std::shared_ptr<state> s, Tag t, future<T> f)
            : st(std::move(s)), tag(std::move(t)), fut(std::move(f)) {
            std::lock_guard lock(st->n.mu);
            ++st->pending_;
            next_pending = st->pending_list_;
            if (next_pending) next_pending->prev_pending = this;
            st->pending_list_ = this;
        }
        void on_complete(detail::task_base&) noexcept override {
            {
                std::lock_guard lock(st->n.mu);
                if (prev_pending) prev_pending->next_pending = next_pending;
                else st->pending_list_ = next_pending;
                if (next_pending) next_pending->prev_pending = prev_pending;
                st->push_locked(entry{std::move(tag), std::move(fut)});
            }
            delete this;
        }
    };

    std::optional<entry> pop_until(detail::deadline_t deadline) {
        for (;;) {
            {
                std::lock_guard lock(state_->n.mu);
                if (auto e = state_->pop_locked()) return e;
                if (state_->pending_ == 0) {
                    if (!deadline)
                        throw error(
                            "muster::completion_queue::pop: the queue is empty and nothing is "
                            "pending, so it would block forever; add() futures first");
                    return std::nullopt;
                }
            }
            if (!detail::wait_on(state_->n, deadline,
                                 [&] { return !state_->ready_.empty() || state_->pending_ == 0; }))
                return std::nullopt;
        }
    }

    std::shared_ptr<state> state_;
};

}  // namespace muster
