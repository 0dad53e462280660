#include "muster/thread_pool.hpp"

#include "scheduler/pool_core.hpp"

namespace muster {

thread_pool::thread_pool(thread_pool_options options)
    : core_(detail::make_pool_core(std::move(options))) {}

thread_pool::~thread_pool() {
    if (core_) core_->shutdown({.wait = true});
}

void thread_pool::wait_idle() { core_->wait_idle(); }
void thread_pool::shutdown(shutdown_options options) { core_->shutdown(options); }
void thread_pool::terminate() { core_->terminate(); }
pool_stats thread_pool::stats() const { return core_->stats(); }
std::size_t thread_pool::max_workers() const noexcept { return core_->max_workers(); }

}  // namespace muster
