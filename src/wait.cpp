#include "muster/wait.hpp"

namespace muster::detail {

void check_return_when(return_when when) {
    switch (when) {
        case return_when::first_completed:
        case return_when::first_exception:
        case return_when::all_completed: return;
    }
    throw invalid_argument(
        "muster::wait: return_when is not one of first_completed, first_exception, "
        "all_completed (value " +
        std::to_string(static_cast<int>(when)) + ")");
}

void throw_as_completed_timeout(std::size_t unfinished, std::size_t total) {
    throw timeout_error("muster::as_completed: " + std::to_string(unfinished) + " (of " +
                        std::to_string(total) +
                        ") futures unfinished when the timeout passed; they keep running: "
                        "iterate again with a longer timeout, or cancel them");
}

}  // namespace muster::detail
