#include "unhandled.hpp"

#include <atomic>
#include <cstdio>
#include <cxxabi.h>
#include <memory>
#include <mutex>
#include <typeinfo>
#include <unordered_map>

#include "muster/detail/task.hpp"
#include "muster/error.hpp"

namespace muster::detail {

namespace {

struct entry {
    std::string name;
    std::function<void(std::exception_ptr)> handler;
};

struct registry {
    std::mutex mu;
    std::unordered_map<std::uint32_t, std::shared_ptr<const entry>> entries;
};

registry& the_registry() {
    // Leaked on purpose: executors may report from static destructors at program exit.
    static auto* r = new registry;
    return *r;
}

std::string demangle(const char* name) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                               std::free);
    return status == 0 && out ? std::string(out.get()) : std::string(name);
}

void print_default(const std::string& executor, const char* what_happened,
                   const std::exception_ptr& error) noexcept {
    try {
        std::string const msg = "muster: " + std::string(what_happened) + " in " + executor +
                                ": " + describe_exception(error) +
                                " (set on_unhandled_exception to handle it)\n";
        std::fputs(msg.c_str(), stderr);
    } catch (...) {
        std::fputs("muster: an unhandled exception was reported (out of memory describing it)\n",
                   stderr);
    }
}

}  // namespace

std::uint32_t next_executor_id() noexcept {
    static std::atomic<std::uint32_t> next{1};
    // relaxed: only uniqueness matters.
    std::uint32_t id = next.fetch_add(1, std::memory_order_relaxed);
    if (id == 0) id = next.fetch_add(1, std::memory_order_relaxed);
    return id;
}

void register_unhandled_handler(std::uint32_t id, std::string name,
                                std::function<void(std::exception_ptr)> handler) {
    auto e = std::make_shared<const entry>(entry{std::move(name), std::move(handler)});
    auto& r = the_registry();
    std::lock_guard lock(r.mu);
    r.entries[id] = std::move(e);
}

void unregister_unhandled_handler(std::uint32_t id) noexcept {
    auto& r = the_registry();
    std::shared_ptr<const entry> doomed;  // destroyed outside the lock
    std::lock_guard lock(r.mu);
    if (auto it = r.entries.find(id); it != r.entries.end()) {
        doomed = std::move(it->second);
        r.entries.erase(it);
    }
}

std::string describe_exception(const std::exception_ptr& error) {
    if (!error) return "no exception";
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return demangle(typeid(e).name()) + ": " + e.what();
    } catch (...) {
        if (auto* t = abi::__cxa_current_exception_type()) return demangle(t->name());
        return "unknown exception";
    }
}

void report_unhandled(std::uint32_t owner_id, std::exception_ptr error,
                      const char* what_happened) noexcept {
    std::shared_ptr<const entry> e;
    {
        auto& r = the_registry();
        std::lock_guard lock(r.mu);
        if (auto it = r.entries.find(owner_id); it != r.entries.end()) e = it->second;
    }
    if (!e) {
        print_default("an executor that no longer exists", what_happened, error);
        return;
    }
    if (!e->handler) {
        print_default(e->name, what_happened, error);
        return;
    }
    try {
        e->handler(error);
    } catch (...) {
        // The handler itself threw: report both on stderr rather than lose either.
        print_default(e->name, what_happened, error);
        print_default(e->name, "the on_unhandled_exception handler threw", std::current_exception());
    }
}

[[noreturn]] void throw_cancelled() {
    throw cancelled_error("muster::future: the task was cancelled before it started");
}
[[noreturn]] void throw_no_state() {
    throw error(
        "muster::future: this future has no task (default-constructed or moved-from); "
        "use a future returned by submit()");
}
[[noreturn]] void throw_result_timeout() {
    throw timeout_error(
        "muster::future: the task did not finish within the timeout; it is still pending or "
        "running and unchanged: wait again, or cancel() it");
}

}  // namespace muster::detail
