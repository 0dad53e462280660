// muster-example-needs: curl httplib
// 05: a small crawler: fetch many pages concurrently and report each as it arrives.
//
// The concurrent.futures documentation's own example, translated:
//
//     with ThreadPoolExecutor(max_workers=4) as ex:
//         future_to_url = {ex.submit(load_url, url): url for url in urls}
//         for future in as_completed(future_to_url):
//             print(future_to_url[future], len(future.result()))
//
// To stay self-contained (and off the network) the program first starts an HTTP server on
// 127.0.0.1 with cpp-httplib, serving 40 pages at /page/<i>, each after a small delay that
// depends on i, so that pages finish out of order. Then pool tasks fetch every page with
// libcurl, one easy handle per task, and muster::as_completed yields the futures in the order
// the downloads finish. Each page's size and checksum are checked against what the server
// generated. The result carries its page number, so no future-to-url dict is needed.

#include <curl/curl.h>
#include <httplib.h>
#include <muster/muster.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int page_count = 40;

// Deterministic content of page i, a few hundred bytes to a few KB.
std::string page_body(int i) {
    std::string body = "<html><body><h1>Page " + std::to_string(i) + "</h1>\n";
    for (int line = 0; line < 10 + 3 * i; ++line)
        body += "<p>line " + std::to_string(line) + " of page " + std::to_string(i) + "</p>\n";
    return body + "</body></html>\n";
}

// The server answers page i after (i * 37) % 50 ms, so completion order is not index order.
std::chrono::milliseconds page_delay(int i) { return std::chrono::milliseconds((i * 37) % 50); }

// FNV-1a, a checksum that is enough to tell two pages apart.
std::uint64_t checksum(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

struct page {
    int index = 0;
    long status = 0;
    std::string body;
    double ms = 0;  // how long the download took
};

std::size_t append_to_string(char* data, std::size_t size, std::size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
}

// One task: fetch one page with its own libcurl easy handle.
page fetch(int port, int index) {
    auto const start = std::chrono::steady_clock::now();
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw std::runtime_error("curl_easy_init failed");
    std::string const url =
        "http://127.0.0.1:" + std::to_string(port) + "/page/" + std::to_string(index);
    page p;
    p.index = index;
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PROXY, "");   // loopback: ignore any http_proxy setting
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);  // required with threads
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_to_string);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &p.body);
    CURLcode const rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK) throw std::runtime_error(url + ": " + curl_easy_strerror(rc));
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &p.status);
    p.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
               .count();
    return p;
}

}  // namespace

#if defined(__SANITIZE_THREAD__)
// Debian's cpp-httplib is a prebuilt library that ThreadSanitizer has not instrumented, so TSan
// cannot see the synchronisation inside it (its thread pool, its shared_ptr counts) and
// reports races between httplib's own threads. Reports whose stack runs through that library are
// suppressed; muster's code and this program's are still checked.
extern "C" const char* __tsan_default_suppressions() { return "race:libcpp-httplib.so\n"; }
#endif

int main() {
    // libcurl's global state is initialised once, before any thread uses it.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        std::printf("curl_global_init failed\n");
        return 1;
    }

    // The server: bind first (so the port is known and connections queue in the backlog),
    // then serve on a thread of its own.
    httplib::Server server;
    server.Get(R"(/page/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
        int const i = std::stoi(req.matches[1].str());
        std::this_thread::sleep_for(page_delay(i));
        res.set_content(page_body(i), "text/html");
    });
    int const port = server.bind_to_any_port("127.0.0.1");
    if (port <= 0) {
        std::printf("could not bind an HTTP server to 127.0.0.1\n");
        return 1;
    }
    std::thread server_thread([&server] { server.listen_after_bind(); });
    std::printf("HTTP server on 127.0.0.1:%d serving %d pages\n", port, page_count);

    auto const start = std::chrono::steady_clock::now();
    int good = 0, bad = 0, out_of_order = 0, arrived = 0;
    std::vector<bool> seen(page_count, false);
    std::size_t bytes = 0;
    {
        // Four downloads at a time. (Debian's cpp-httplib listens with a backlog of 5: a burst
        // of more simultaneous connects than that can see one dropped and retried by TCP a
        // whole second later.)
        muster::thread_pool pool({.max_workers = 4});
        std::vector<muster::future<page>> futures;
        for (int i = 0; i < page_count; ++i) futures.push_back(pool.submit(fetch, port, i));

        std::printf("pages in arrival order (page:bytes):");
        for (auto& f : muster::as_completed(futures)) {
            std::printf("%s", arrived % 8 == 0 ? "\n " : "");
            try {
                const page& p = f.result();
                std::string const expected = page_body(p.index);
                bool const same = p.status == 200 && p.body.size() == expected.size() &&
                                  checksum(p.body) == checksum(expected) && !seen[p.index];
                seen[p.index] = true;
                std::printf(" %2d:%-5zu%s", p.index, p.body.size(), same ? "" : "(BAD)");
                (same ? good : bad) += 1;
                bytes += p.body.size();
                if (p.index != arrived) ++out_of_order;
            } catch (const std::exception& e) {
                std::printf("\n  fetch failed: %s\n", e.what());
                ++bad;
            }
            ++arrived;
        }
        std::printf("\n");
    }
    double const ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();

    server.stop();
    server_thread.join();
    curl_global_cleanup();

    std::printf("%d pages fetched and verified (%zu bytes) in %.1f ms on 4 workers; %d arrived "
                "out of index order\n",
                good, bytes, ms, out_of_order);
    bool const ok = good == page_count && bad == 0;
    std::printf("%s\n", ok ? "check: every page arrived once with the right size and checksum"
                           : "check FAILED");
    return ok ? 0 : 1;
}
