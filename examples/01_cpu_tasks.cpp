// 01: many short CPU tasks, some of which fail; collect the results and, separately, the errors.
//
// The Python version of this scenario:
//
//     with ThreadPoolExecutor() as ex:
//         futures = {ex.submit(collatz_steps, text): text for text in inputs}
//         for f in as_completed(futures):
//             try:    results[futures[f]] = f.result()
//             except Exception as e:    errors[futures[f]] = e
//
// muster's futures are not dictionary keys; a muster::completion_queue plays the role of that
// dict: each task is submitted under a tag (here the input text), and when the tasks are done
// take_results() hands back (tag, value) pairs and take_errors() (tag, exception) pairs. The
// exception is exactly the one the task threw, not a wrapper.

#include <muster/muster.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace {

// The task: parse a number and count the steps of its Collatz sequence down to 1. Bad text
// throws std::invalid_argument, a negative number std::domain_error.
int collatz_steps(const std::string& text) {
    long long n = 0;
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size())
        throw std::invalid_argument("not a number: \"" + text + "\"");
    if (n <= 0) throw std::domain_error("not a positive number: " + text);
    // Scale the input up so that each task does a little real work.
    std::uint64_t x = static_cast<std::uint64_t>(n) * 1'000'003;
    int steps = 0;
    for (; x != 1; ++steps) x = (x % 2 == 0) ? x / 2 : 3 * x + 1;
    return steps;
}

// 100 inputs: "1" .. "100", except that multiples of 10 are negative and multiples of 17 carry
// a stray letter, so 10 + 5 of them fail.
std::vector<std::string> make_inputs() {
    std::vector<std::string> inputs;
    for (int k = 1; k <= 100; ++k) {
        if (k % 10 == 0) inputs.push_back("-" + std::to_string(k));
        else if (k % 17 == 0) inputs.push_back(std::to_string(k) + "x");
        else inputs.push_back(std::to_string(k));
    }
    return inputs;
}

// What kind of exception a failed task stored, for the report.
const char* kind_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::invalid_argument&) {
        return "invalid_argument";
    } catch (const std::domain_error&) {
        return "domain_error";
    } catch (...) {
        return "other";
    }
}

std::string what_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    }
}

}  // namespace

int main() {
    std::vector<std::string> const inputs = make_inputs();
    auto const start = std::chrono::steady_clock::now();

    // ThreadPoolExecutor(): one worker per hardware thread by default.
    muster::thread_pool pool;
    // Results are ints, tags are the input texts.
    muster::completion_queue<int, std::string> done;
    for (const std::string& text : inputs) {
        // Arguments are copied into the task, as with std::thread (and Python's submit).
        done.submit(pool, text, collatz_steps, text);
    }
    done.wait_all();  // like concurrent.futures.wait(futures): every task has finished

    // Both lists come back in completion order.
    auto const results = done.take_results();  // vector<pair<std::string, int>>
    auto const errors = done.take_errors();    // vector<pair<std::string, exception_ptr>>
    auto const elapsed = std::chrono::duration<double, std::milli>(
                             std::chrono::steady_clock::now() - start)
                             .count();

    std::printf("ran %zu tasks on %zu workers in %.1f ms\n", inputs.size(), pool.max_workers(),
                elapsed);
    std::printf("%zu succeeded, %zu failed\n", results.size(), errors.size());

    std::printf("first results, in completion order:\n");
    for (std::size_t i = 0; i < results.size() && i < 4; ++i)
        std::printf("  collatz_steps(\"%s\") = %d\n", results[i].first.c_str(), results[i].second);
    std::printf("first errors, in completion order:\n");
    for (std::size_t i = 0; i < errors.size() && i < 4; ++i)
        std::printf("  input \"%s\": %s: %s\n", errors[i].first.c_str(), kind_of(errors[i].second),
                    what_of(errors[i].second).c_str());

    // Checks: the counts, every value against a serial run, and the type of every error.
    bool ok = results.size() == 85 && errors.size() == 15 && done.empty();
    for (const auto& [text, steps] : results) ok = ok && steps == collatz_steps(text);
    for (const auto& [text, e] : errors) {
        bool const negative = text.starts_with("-");
        ok = ok && std::string(kind_of(e)) == (negative ? "domain_error" : "invalid_argument");
    }
    std::printf("%s\n", ok ? "check: 85 results and 15 errors, all as expected"
                           : "check FAILED: unexpected results or errors");
    return ok ? 0 : 1;
}
