// muster/detail/wait_target.hpp: what a blocking call waits for, so that waits on one future,
// on many futures (wait, as_completed) and on a completion queue all help on pool workers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "muster/detail/parking.hpp"

namespace muster::detail {

/// A condition some thread waits for. On a pool worker the waiter runs other tasks and, when
/// there is none, parks on its worker's park word after arm(); elsewhere it calls block().
struct wait_target {
    /// Whether the condition holds. Thread-safe.
    virtual bool ready() = 0;
    /// Arranges that, when the condition may have become true, 1 is stored to `*word` (release)
    /// and the word is unparked. Returns false (and arms nothing) if the condition holds now.
    virtual bool arm(std::atomic<std::uint32_t>* word) = 0;
    /// Undoes arm(word). On return no thread will touch `word` on this target's behalf.
    virtual void disarm(std::atomic<std::uint32_t>* word) = 0;
    /// Blocks the calling (non-worker) thread until ready() or the deadline; returns ready().
    virtual bool block(deadline_t deadline) = 0;

protected:
    ~wait_target() = default;
};

/// Blocks until `target` is ready or `deadline` passes; returns whether it is ready. On a muster
/// worker thread, runs other tasks while waiting (see docs/design/sleep.md, H1-H3).
bool wait_for_target(wait_target& target, deadline_t deadline);

/// Shared state guarded by one mutex that several conditions may be waited on (the multi-future
/// waiter, the completion queue). Whoever changes the state does so under mu, then calls
/// signal_locked(), which wakes every blocked or armed waiter; each re-checks its own condition.
class notifier {
public:
    std::mutex mu;

    /// Arms `word` for the next signal. Call with mu held.
    void arm_locked(std::atomic<std::uint32_t>* word) { armed_.push_back(word); }
    /// Removes `word` if still armed. Takes mu: once it returns no wake for `word` is in flight,
    /// because wakes happen under mu.
    void disarm(std::atomic<std::uint32_t>* word) {
        std::lock_guard lock(mu);
        std::erase(armed_, word);
    }
    /// Waits on the condition variable (mu held through `lock`) until pred() or the deadline.
    template <class Pred>
    bool wait_locked(std::unique_lock<std::mutex>& lock, deadline_t deadline, Pred pred) {
        ++blocked_;
        bool ok = true;
        if (!deadline) cv_.wait(lock, pred);
        else ok = cv_.wait_until(lock, *deadline, pred);
        --blocked_;
        return ok;
    }
    /// Wakes every waiter. Call with mu held, after changing the state.
    void signal_locked() {
        if (blocked_ != 0) cv_.notify_all();
        for (auto* word : armed_) {
            word->store(1, std::memory_order_release);
            unpark_one(*word);
        }
        armed_.clear();
    }

private:
    std::condition_variable cv_;
    std::vector<std::atomic<std::uint32_t>*> armed_;  // guarded by mu
    std::size_t blocked_ = 0;                         // guarded by mu
};

/// A wait_target for a predicate over a notifier's state. Pred is called with n.mu held.
template <class Pred>
class predicate_target final : public wait_target {
public:
    predicate_target(notifier& n, Pred pred) : n_(n), pred_(std::move(pred)) {}
    bool ready() override {
        std::lock_guard lock(n_.mu);
        return pred_();
    }
    bool arm(std::atomic<std::uint32_t>* word) override {
        std::lock_guard lock(n_.mu);
        if (pred_()) return false;
        n_.arm_locked(word);
        return true;
    }
    void disarm(std::atomic<std::uint32_t>* word) override { n_.disarm(word); }
    bool block(deadline_t deadline) override {
        std::unique_lock lock(n_.mu);
        return n_.wait_locked(lock, deadline, pred_);
    }

private:
    notifier& n_;
    Pred pred_;
};

/// Waits (helping on a worker) until pred() holds under n.mu, or the deadline; returns pred().
template <class Pred>
bool wait_on(notifier& n, deadline_t deadline, Pred pred) {
    predicate_target<Pred> target(n, std::move(pred));
    return wait_for_target(target, deadline);
}

}  // namespace muster::detail
