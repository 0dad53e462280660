// muster/parallel_for.hpp: a data-parallel loop over an index range on a thread_pool.
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "muster/detail/wait_target.hpp"
#include "muster/error.hpp"
#include "muster/thread_pool.hpp"

namespace muster {

/// Options of parallel_for.
struct parallel_for_options {
    /// Indices per chunk (the unit of scheduling). nullopt: about 8 chunks per worker, which
    /// balances load without measurable per-chunk overhead. 0 is invalid.
    std::optional<std::size_t> grain{};
};

namespace detail {

/// Shared by the runners of one loop. Chunks are claimed with one fetch_add each, so a chunk
/// costs an atomic increment, not a task allocation; `done` counts finished chunks (each runner
/// adds its count once, when no chunk is left) and the runner that completes it signals the
/// caller.
struct loop_state {
    notifier n;
    std::size_t chunks = 0;
    /// Next chunk to claim; relaxed: only uniqueness of the claimed index matters.
    std::atomic<std::size_t> next{0};
    /// Chunks finished. acq_rel increments, acquire load by the caller: the caller sees every
    /// chunk's writes once it reads done == chunks.
    std::atomic<std::size_t> done{0};
    /// Set after a chunk threw; later chunks are skipped. relaxed: advisory.
    std::atomic<bool> failed{false};
    std::exception_ptr error;  // guarded by n.mu; the first exception
};

template <class Index, class Body>
void run_chunks(loop_state& st, Index first, Index last, std::size_t grain, Body& body) {
    // Chunks finished here are counted locally and published once, when no chunk is left: one
    // shared increment per runner instead of one per chunk.
    std::size_t finished = 0;
    for (;;) {
        std::size_t const k = st.next.fetch_add(1, std::memory_order_relaxed);
        if (k >= st.chunks) break;
        if (!st.failed.load(std::memory_order_relaxed)) {
            try {
                Index const b = static_cast<Index>(first + static_cast<Index>(k * grain));
                Index const e = static_cast<Index>(
                    std::min<std::size_t>(static_cast<std::size_t>(last - first), (k + 1) * grain) +
                    static_cast<std::size_t>(first));
                if constexpr (std::is_invocable_v<Body&, Index, Index>) {
                    body(b, e);
                } else {
                    for (Index i = b; i < e; ++i) body(i);
                }
            } catch (...) {
                st.failed.store(true, std::memory_order_relaxed);
                std::lock_guard lock(st.n.mu);
                if (!st.error) st.error = std::current_exception();
            }
        }
        ++finished;
    }
    if (finished != 0 && st.done.fetch_add(finished, std::memory_order_acq_rel) + finished ==
                              st.chunks) {
        std::lock_guard lock(st.n.mu);
        st.n.signal_locked();
    }
}

}  // namespace detail

/// Runs `body` over [first, last) on `pool` and returns when every index is done. `body` is
/// either `body(Index i)` (called per index) or `body(Index begin, Index end)` (called per
/// chunk). Chunks of `grain` indices are claimed dynamically by up to max_workers - 1 pool
/// tasks (one on a one-worker pool) and by the calling thread, which takes part instead of idling (so the loop completes even
/// when every worker is busy, and inside the pool's own tasks).
///
/// If a chunk throws, chunks not yet started are skipped and the first exception is rethrown
/// here after the running ones end. Throws invalid_argument for grain 0. If the pool refuses the
/// helper tasks (shut down, queue full), the calling thread runs every chunk itself. `body` is called concurrently from several threads; it must be safe for
/// that. Blocking: returns after all chunks ran; on a pool worker it runs other tasks while it
/// waits for chunks still running elsewhere.
template <std::integral Index, class Body>
    requires std::is_invocable_v<std::decay_t<Body>&, Index> ||
             std::is_invocable_v<std::decay_t<Body>&, Index, Index>
void parallel_for(thread_pool& pool, Index first, Index last, Body&& body,
                  parallel_for_options options = {}) {
    if (options.grain && *options.grain == 0)
        throw invalid_argument(
            "muster::parallel_for_options::grain is 0; it must be at least 1 (leave it out for "
            "an automatic grain)");
    if (!(first < last)) return;
    std::size_t const n = static_cast<std::size_t>(last - first);
    std::size_t const workers = pool.max_workers();
    std::size_t const grain =
        options.grain ? *options.grain : std::max<std::size_t>(1, n / (8 * workers));
    auto st = std::make_shared<detail::loop_state>();
    st->chunks = (n - 1) / grain + 1;
    auto& b = body;
    // The caller is one of the participants: with W workers, W - 1 helper tasks plus the caller
    // keep W threads busy (as oneTBB's caller-joins-the-arena model does) instead of W + 1
    // threads competing for W cores. A one-worker pool still gets one helper.
    std::size_t const helpers = std::min(st->chunks, workers > 1 ? workers - 1 : 1);
    if (st->chunks > 1) {
        // The runners capture the body by reference: a runner touches it only after claiming a
        // chunk, every chunk is claimed before this call returns, and a runner that starts
        // later claims nothing.
        try {
            pool.post_bulk(helpers, [st, first, last, grain, &b](std::size_t) {
                detail::run_chunks(*st, first, last, grain, b);
            });
        } catch (const error&) {
            // The pool refused some helpers (shut down, full queue): the calling thread runs
            // the chunks they would have run. The loop still completes.
        }
    }
    detail::run_chunks(*st, first, last, grain, b);
    detail::wait_on(st->n, std::nullopt, [&] {
        return st->done.load(std::memory_order_acquire) == st->chunks;
    });
    if (st->error) std::rethrow_exception(st->error);
}

}  // namespace muster
