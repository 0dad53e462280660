// unhandled_log.hpp: collecting what a pool reports to on_unhandled_exception, and reading
// an exception's message (shared by the test files; no other test support needed).
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace muster_test {

/// Collects the exceptions a pool reports to on_unhandled_exception, with the thread each was
/// reported on; counts `reported` down, if set, after each.
class unhandled_log {
public:
    /// Counted down once per report; set before the pool can report.
    std::latch* reported = nullptr;

    /// The handler to put in thread_pool_options::on_unhandled_exception. The log must outlive
    /// the pool.
    std::function<void(std::exception_ptr)> handler() {
        return [this](std::exception_ptr e) {
            {
                std::lock_guard lock(mu_);
                errors_.push_back(std::move(e));
                threads_.push_back(std::this_thread::get_id());
            }
            if (reported) reported->count_down();
        };
    }
    std::vector<std::exception_ptr> errors() const {
        std::lock_guard lock(mu_);
        return errors_;
    }
    std::vector<std::thread::id> threads() const {
        std::lock_guard lock(mu_);
        return threads_;
    }
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return errors_.size();
    }

private:
    mutable std::mutex mu_;
    std::vector<std::exception_ptr> errors_;
    std::vector<std::thread::id> threads_;
};

/// The what() of a std::exception held by `e`, or "<non-std exception>".
inline std::string message_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "<non-std exception>";
    }
}

}  // namespace muster_test
