// 03: tagged results, taken in completion order.
//
// Hand-written Python pools often push (tag, result) pairs onto a results queue, and the pip
// `threadpool` package offers poll(); both hand the caller whatever finished first, with a name.
// muster::completion_queue<T, Tag> does that for futures: submit work under a tag, then
//
//   pop()              -> the next (tag, future) pair to complete, blocking until there is one;
//   wait_for_tag(tag)  -> the future of one particular tag, once it has completed.
//
// Part 1 makes the completion order deterministic with gates (std::latch) that the main thread
// opens one at a time, so it differs from the submission order in the same way on every run.
// Part 2 lets 20 jobs race and only checks that each tag arrives exactly once.

#include <muster/muster.hpp>

#include <cctype>
#include <cstdio>
#include <latch>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// A one-shot gate: a task waits in pass() until the main thread calls open().
class gate {
public:
    void open() { latch_.count_down(); }
    void pass() { latch_.wait(); }

private:
    std::latch latch_{1};
};

std::string shout(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

bool part1_gated_order() {
    std::printf("part 1: five jobs held at gates, released in a chosen order\n");
    std::vector<std::string> const tags{"alpha", "bravo", "charlie", "delta", "echo"};
    std::map<std::string, gate> gates;
    for (const auto& tag : tags) gates[tag];  // construct one closed gate per tag

    // Five workers, so that all five jobs can wait at their gates at the same time.
    muster::thread_pool pool({.max_workers = 5});
    muster::completion_queue<std::string, std::string> queue;
    for (const auto& tag : tags) {
        queue.submit(pool, tag, [&g = gates.at(tag), tag] {
            g.pass();
            if (tag == "echo") throw std::runtime_error("echo failed on purpose");
            return shout(tag);
        });
    }
    std::printf("  submitted: alpha bravo charlie delta echo\n");

    bool ok = true;
    // Open one gate, then pop(): only that job can have completed, so it comes out next.
    for (const char* next : {"delta", "bravo", "echo"}) {
        gates.at(next).open();
        auto [tag, future] = queue.pop();
        // A failed job arrives like any other; its future rethrows the job's own exception.
        std::string outcome;
        try {
            outcome = "result " + future.result();
        } catch (const std::runtime_error& e) {
            outcome = std::string("raised runtime_error: ") + e.what();
        }
        std::printf("  opened %-7s -> pop() = (%s, %s)\n", next, tag.c_str(), outcome.c_str());
        ok = ok && tag == next;
    }

    // Open two gates at once: whichever finishes first, wait_for_tag fetches the one we ask
    // for and leaves the other in the queue.
    gates.at("alpha").open();
    gates.at("charlie").open();
    auto charlie = queue.wait_for_tag("charlie");
    std::printf("  opened alpha and charlie -> wait_for_tag(\"charlie\") = %s\n",
                charlie.result().c_str());
    auto [last_tag, last] = queue.pop();
    std::printf("                               then pop() = (%s, result %s)\n",
                last_tag.c_str(), last.result().c_str());
    ok = ok && charlie.result() == "CHARLIE" && last_tag == "alpha" && last.result() == "ALPHA" &&
         queue.empty();
    std::printf("  completion order: delta bravo echo charlie alpha%s\n",
                ok ? "" : "  <- check FAILED");
    return ok;
}

bool part2_free_order() {
    std::printf("part 2: twenty jobs racing; the order varies from run to run\n");
    muster::thread_pool pool({.max_workers = 4});
    muster::completion_queue<long, std::string> queue;
    for (int i = 0; i < 20; ++i) {
        std::string const tag = (i < 10 ? "job-0" : "job-") + std::to_string(i);
        // Later jobs do less work, so on several cores they tend to overtake earlier ones.
        queue.submit(pool, tag, [i] {
            long sum = 0;
            for (long k = 0; k < (20 - i) * 20'000L; ++k) sum += k % 7;
            return sum;
        });
    }

    std::set<std::string> seen;
    std::size_t duplicates = 0;
    std::printf("  arrival order:");
    for (int n = 0; !queue.empty(); ++n) {
        auto [tag, future] = queue.pop();
        (void)future.result();
        if (!seen.insert(tag).second) ++duplicates;
        std::printf("%s %s", n % 10 == 0 ? "\n   " : "", tag.c_str());
    }
    bool const ok = seen.size() == 20 && duplicates == 0;
    std::printf("\n  %zu distinct tags, %zu duplicates%s\n", seen.size(), duplicates,
                ok ? "" : "  <- check FAILED");
    return ok;
}

}  // namespace

int main() {
    bool const ok1 = part1_gated_order();
    bool const ok2 = part2_free_order();
    bool const ok = ok1 && ok2;
    std::printf("%s\n", ok ? "check: every tag arrived exactly once, in the expected order"
                           : "check FAILED");
    return ok ? 0 : 1;
}
