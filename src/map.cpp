#include "muster/map.hpp"

namespace muster::detail {

void throw_map_timeout(std::size_t in_flight) {
    throw timeout_error("muster::thread_pool::map: the timeout passed before this element's task "
                        "finished; it and the " +
                        std::to_string(in_flight > 0 ? in_flight - 1 : 0) +
                        " other tasks in flight were cancelled if not yet started, and the "
                        "iteration ends; use a longer map_options::timeout");
}

std::size_t map_buffersize(const map_options& options, std::size_t max_workers) {
    if (!options.buffersize) return 2 * max_workers;
    if (*options.buffersize == 0)
        throw invalid_argument(
            "muster::map_options::buffersize is 0; it must be at least 1 (leave it out for "
            "2 * max_workers)");
    return *options.buffersize;
}

}  // namespace muster::detail
