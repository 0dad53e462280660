// muster/parallel_for.hpp: a data-parallel loop over an index range on a thread_pool.
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
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

/// One runner's share of the chunk indices, [begin, end), packed into one word (begin in the
/// high 32 bits) so that the owner's claim and a thief's split are single atomic operations on
/// it. Each on its own cache line: the owner claims from it for every chunk.
struct alignas(64) chunk_range {
    std::atomic<std::uint64_t> word{0};

    static constexpr std::uint64_t pack(std::uint64_t b, std::uint64_t e) noexcept {
        return (b << 32) | e;
    }
    static constexpr std::uint64_t begin_of(std::uint64_t w) noexcept { return w >> 32; }
    static constexpr std::uint64_t end_of(std::uint64_t w) noexcept { return w & 0xffffffffu; }
    /// Chunks left; a begin past the end (an owner's claim that found the range empty) is empty.
    static constexpr std::uint64_t left(std::uint64_t w) noexcept {
        return begin_of(w) < end_of(w) ? end_of(w) - begin_of(w) : 0;
    }
};

/// At most this many chunks per loop, so that begin and end fit 32 bits with room for the
/// owner's overshooting claims (PF1); larger loops get a larger grain.
inline constexpr std::size_t max_loop_chunks = std::size_t{1} << 30;

/// Shared by the runners of one loop (docs/design/scheduler.md, "parallel_for", steps PF1-PF3).
/// The chunks are split into one range per runner up front; a runner claims chunks from the
/// front of its own range (PF1: one uncontended atomic add per chunk, no task allocation) and,
/// when it runs dry, steals the upper half of the fullest other range into its own (PF2). Every
/// chunk is in exactly one range, or in transit in one thief's hands, until it is claimed.
/// `done` counts finished chunks (each runner adds its count once, when no chunk is left
/// anywhere) and the runner that completes it signals the caller (PF3).
struct loop_state {
    notifier n;
    std::size_t chunks = 0;
    std::size_t runners = 0;
    std::unique_ptr<chunk_range[]> ranges;
    /// Hands out the runner slots. relaxed: only uniqueness matters (the ranges were written
    /// before the runners were posted, which publishes them).
    std::atomic<std::size_t> next_runner{0};
    /// Chunks finished. acq_rel increments, acquire load by the caller: the caller sees every
    /// chunk's writes once it reads done == chunks.
    std::atomic<std::size_t> done{0};
    /// Set after a chunk threw; later chunks are skipped. relaxed: advisory.
    std::atomic<bool> failed{false};
    std::exception_ptr error;  // guarded by n.mu; the first exception

    loop_state(std::size_t chunk_count, std::size_t runner_count)
        : chunks(chunk_count), runners(runner_count), ranges(new chunk_range[runner_count]) {
        for (std::size_t r = 0; r < runners; ++r) {
            std::uint64_t const b = chunks * r / runners, e = chunks * (r + 1) / runners;
            ranges[r].word.store(chunk_range::pack(b, e), std::memory_order_relaxed);
        }
    }

    /// PF1: claims the front chunk of range `r`. fetch_add on the begin half: a thief's split
    /// (PF2) is a CAS on the same word, so either the claim sees the split range or the split
    /// fails and retries; a claim on an empty range only pushes begin further past end, which
    /// still reads as empty. relaxed: every chunk index is handed out by exactly one RMW on the
    /// word that holds it, which is all a claim needs; chunk results are published by `done`.
    bool claim(std::size_t r, std::uint64_t& k) noexcept {
        std::uint64_t const w =
            ranges[r].word.fetch_add(std::uint64_t{1} << 32, std::memory_order_relaxed);
        k = chunk_range::begin_of(w);
        return k < chunk_range::end_of(w);
    }

    /// PF2: moves the upper half (all, if one chunk is left) of the fullest other range into
    /// range `r`, which is empty and which no one else fills: thieves only split non-empty
    /// ranges. Between the CAS and the store the stolen chunks are in no range; they are not
    /// lost, since this runner claims them. Returns false when every range is empty. relaxed,
    /// as for claims.
    bool steal_into(std::size_t r) noexcept {
        for (;;) {
            std::size_t victim = runners;
            std::uint64_t vw = 0, most = 0;
            for (std::size_t i = 1; i < runners; ++i) {
                std::size_t const v = (r + i) % runners;
                std::uint64_t const w = ranges[v].word.load(std::memory_order_relaxed);
                if (chunk_range::left(w) > most) {
                    victim = v;
                    vw = w;
                    most = chunk_range::left(w);
                }
            }
            if (victim == runners) return false;
            std::uint64_t const b = chunk_range::begin_of(vw), e = chunk_range::end_of(vw);
            std::uint64_t const mid = most >= 2 ? b + most / 2 : b;
            if (ranges[victim].word.compare_exchange_strong(vw, chunk_range::pack(b, mid),
                                                            std::memory_order_relaxed,
                                                            std::memory_order_relaxed)) {
                ranges[r].word.store(chunk_range::pack(mid, e), std::memory_order_relaxed);
                return true;
            }
        }
    }
};

template <class Index, class Body>
void run_chunks(loop_state& st, Index first, Index last, std::size_t grain, Body& body) {
    std::size_t const me = st.next_runner.fetch_add(1, std::memory_order_relaxed);
    if (me >= st.runners) return;
    // Chunks finished here are counted locally and published once, when no chunk is left: one
    // shared increment per runner instead of one per chunk.
    std::size_t finished = 0;
    do {
        std::uint64_t k;
        while (st.claim(me, k)) {
            if (!st.failed.load(std::memory_order_relaxed)) {
                try {
                    Index const b = static_cast<Index>(first + static_cast<Index>(k * grain));
                    Index const e = static_cast<Index>(
                        std::min<std::size_t>(static_cast<std::size_t>(last - first),
                                              (k + 1) * grain) +
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
    } while (st.steal_into(me));
    // PF3
    if (finished != 0 && st.done.fetch_add(finished, std::memory_order_acq_rel) + finished ==
                              st.chunks) {
        std::lock_guard lock(st.n.mu);
        st.n.signal_locked();
    }
}

}  // namespace detail

/// Runs `body` over [first, last) on `pool` and returns when every index is done. `body` is
/// either `body(Index i)` (called per index) or `body(Index begin, Index end)` (called per
/// chunk). The chunks of `grain` indices are shared out between up to max_workers - 1 pool
/// tasks (one on a one-worker pool) and the calling thread, which takes part instead of idling
/// (so the loop completes even when every worker is busy, and inside the pool's own tasks);
/// a participant that runs out steals half of the largest share left.
///
/// If a chunk throws, chunks not yet started are skipped and the first exception is rethrown
/// here after the running ones end. Throws invalid_argument for grain 0. If the pool refuses the
/// helper tasks (shut down, queue full), the calling thread runs every chunk itself. `body` is
/// called concurrently from several threads; it must be safe for that. At most 2^30 chunks: a
/// larger loop gets a larger grain. Blocking: returns after all chunks ran; on a pool worker it
/// runs other tasks while it waits for chunks still running elsewhere.
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
    std::size_t grain =
        options.grain ? *options.grain : std::max<std::size_t>(1, n / (8 * workers));
    if ((n - 1) / grain + 1 > detail::max_loop_chunks)
        grain = (n - 1) / detail::max_loop_chunks + 1;
    std::size_t const chunks = (n - 1) / grain + 1;
    // The caller is one of the participants: with W workers, W - 1 helper tasks plus the caller
    // keep W threads busy (as oneTBB's caller-joins-the-arena model does) instead of W + 1
    // threads competing for W cores. A one-worker pool still gets one helper.
    std::size_t const helpers =
        chunks > 1 ? std::min(chunks - 1, workers > 1 ? workers - 1 : 1) : 0;
    auto st = std::make_shared<detail::loop_state>(chunks, helpers + 1);
    auto& b = body;
    if (helpers != 0) {
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
