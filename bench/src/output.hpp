// bench/src/output.hpp: JSON-lines output and the process-level measurements (clocks, CPU time,
// resident memory) shared by every workload.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <sys/resource.h>
#include <unistd.h>

namespace muster_bench {

using clk = std::chrono::steady_clock;

inline double seconds_since(clk::time_point t0) {
    return std::chrono::duration<double>(clk::now() - t0).count();
}

/// The peer whose measurements this process prints (set once by main).
inline std::string current_peer = "?";

inline std::string json_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

/// One measurement: {"peer","workload","metric","value","unit"}.
inline void emit(std::string_view workload, std::string_view metric, double value,
                 std::string_view unit) {
    std::printf("{\"peer\":\"%s\",\"workload\":\"%s\",\"metric\":\"%s\",\"value\":%.6g,\"unit\":\"%s\"}\n",
                json_escape(current_peer).c_str(), json_escape(workload).c_str(),
                json_escape(metric).c_str(), value, json_escape(unit).c_str());
    std::fflush(stdout);
}

/// A run that produced no measurement: status is one of unsupported, deadlock, failed,
/// check_failed (the driver adds timeout).
inline void emit_status(std::string_view workload, std::string_view status, std::string_view detail) {
    std::printf("{\"peer\":\"%s\",\"workload\":\"%s\",\"status\":\"%s\",\"detail\":\"%s\"}\n",
                json_escape(current_peer).c_str(), json_escape(workload).c_str(),
                json_escape(status).c_str(), json_escape(detail).c_str());
    std::fflush(stdout);
}

inline double timeval_seconds(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

/// User + system CPU time of the whole process (every thread), in seconds.
inline double process_cpu_seconds() {
    rusage r{};
    getrusage(RUSAGE_SELF, &r);
    return timeval_seconds(r.ru_utime) + timeval_seconds(r.ru_stime);
}

/// User + system CPU time of the calling thread, in seconds.
inline double thread_cpu_seconds() {
    rusage r{};
    getrusage(RUSAGE_THREAD, &r);
    return timeval_seconds(r.ru_utime) + timeval_seconds(r.ru_stime);
}

/// Resident set size of this process in bytes (second field of /proc/self/statm, in pages).
inline std::int64_t resident_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size = 0, resident = 0;
    int const got = std::fscanf(f, "%ld %ld", &size, &resident);
    std::fclose(f);
    if (got != 2) return -1;
    return static_cast<std::int64_t>(resident) * static_cast<std::int64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace muster_bench
