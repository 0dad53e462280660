// muster_bench: one measurement per process.
//
//   muster_bench --list                   the peers, one per line
//   muster_bench --workloads              the workloads, one per line
//   muster_bench --versions               compiler, flags and library versions (one JSON line)
//   muster_bench PEER WORKLOAD [--quick]  run one workload for one peer; JSON lines on stdout
//
// bench/run.py runs this program (and bench/python/pypeers.py) interleaved across peers. The
// thread-pool peers run W1-W10, muster-proc (muster::process_pool) runs P1-P3.
#include <cstdio>
#include <string>
#include <string_view>

#include <boost/version.hpp>
#include <oneapi/tbb/version.h>

#include <muster/init.hpp>

#include "output.hpp"
#include "peers.hpp"
#include "process_workloads.hpp"
#include "workloads.hpp"

#ifndef MUSTER_BENCH_FLAGS
#define MUSTER_BENCH_FLAGS "unknown"
#endif

namespace {

using runner = int (*)(std::string_view, const muster_bench::params&);

struct peer_entry {
    const char* name;
    runner run;
};

constexpr peer_entry peers[] = {
    {"muster", &muster_bench::run_workload<muster_bench::muster_peer>},
    {"tbb-arena", &muster_bench::run_workload<muster_bench::tbb_arena_peer>},
    {"tbb-taskgroup", &muster_bench::run_workload<muster_bench::tbb_taskgroup_peer>},
    {"asio", &muster_bench::run_workload<muster_bench::asio_peer>},
    {"std-async", &muster_bench::run_workload<muster_bench::std_async_peer>},
    {"muster-proc", &muster_bench::run_process_workload},
    {"os-floor", &muster_bench::run_floor_workload<muster_bench::os_floor_peer>},
};

void print_versions() {
    using muster_bench::json_escape;
#if defined(__clang__)
    std::string const compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    std::string const compiler = std::string("g++ ") + __VERSION__;
#else
    std::string const compiler = "unknown";
#endif
    std::string const tbb = std::string(TBB_VERSION_STRING) + " (runtime " + TBB_runtime_version() + ")";
    std::string boost = BOOST_LIB_VERSION;
    for (auto& c : boost)
        if (c == '_') c = '.';
    std::printf("{\"compiler\":\"%s\",\"flags\":\"%s\",\"cplusplus\":%ld,\"tbb\":\"%s\",\"boost\":\"%s\"}\n",
                json_escape(compiler).c_str(), json_escape(MUSTER_BENCH_FLAGS).c_str(), long(__cplusplus),
                json_escape(tbb).c_str(), json_escape(boost).c_str());
}

}  // namespace

int main(int argc, char** argv) {
    // muster-proc's worker processes are this program re-executed: in them, init runs the
    // worker loop and never returns. Elsewhere it returns at once.
    muster::init(argc, argv);
    std::string_view const first = argc > 1 ? argv[1] : "";
    if (argc == 2 && first == "--list") {
        for (auto const& p : peers) std::printf("%s\n", p.name);
        return 0;
    }
    if (argc == 2 && first == "--workloads") {
        for (auto w : muster_bench::all_workloads) std::printf("%.*s\n", int(w.size()), w.data());
        return 0;
    }
    if (argc == 2 && first == "--versions") {
        print_versions();
        return 0;
    }
    bool const quick = argc == 4 && std::string_view(argv[3]) == "--quick";
    if (argc != 3 && !quick) {
        std::fprintf(stderr, "usage: %s PEER WORKLOAD [--quick] | --list | --workloads | --versions\n", argv[0]);
        return 2;
    }
    muster_bench::params const p = quick ? muster_bench::params::quick() : muster_bench::params{};
    for (auto const& e : peers) {
        if (first != e.name) continue;
        muster_bench::current_peer = e.name;
        return e.run(argv[2], p);
    }
    std::fprintf(stderr, "unknown peer %s (see --list)\n", argv[1]);
    return 2;
}
