// libFuzzer target: the process pool's frame decoder, fed arbitrary bytes as if a worker sent
// them, and the same bytes as one message of a fork server's channel (either direction). It must
// never read out of bounds, loop forever or crash; a bad stream is "malformed".
#include <cstddef>
#include <cstdint>
#include <string>

#include "process/frame.hpp"

using namespace muster::detail::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // One SOCK_SEQPACKET message of the fork server's channel: the whole input.
    std::string_view const message(reinterpret_cast<const char*>(data), size);
    if (auto const one = single_frame(message)) {
        if (one->size() + header_size != size) __builtin_trap();
        (void)valid_server_frame(*one);  // must stay in bounds (ASan) whatever the bytes
        (void)valid_server_request(*one);
    }
    // The first byte picks the frame limit and how the stream is split into reads.
    std::size_t const limit = std::size_t{1} << (data[0] % 20);
    std::size_t const step = 1 + data[0] / 20;
    frame_reader reader(limit);
    std::string body;
    for (std::size_t off = 1; off < size; off += step) {
        std::size_t const n = off + step <= size ? step : size - off;
        reader.feed(reinterpret_cast<const char*>(data) + off, n);
        for (;;) {
            auto const st = reader.next(body);
            if (st != frame_reader::status::frame) {
                if (st == frame_reader::status::malformed) return 0;
                break;
            }
            if (body.empty() || body.size() > limit) __builtin_trap();
            if (valid_worker_frame(body)) {
                // A valid frame decodes with every field in range.
                decoder d(body);
                d.u8();
                (void)d.rest();
                if (!d.ok()) __builtin_trap();
            }
        }
    }
    // Round trip: what the encoder writes, the reader returns unchanged and the validator takes.
    std::string frame;
    encoder e(frame, kind::result);
    e.u64(7).u8(static_cast<std::uint8_t>(outcome::exception))
        .str(std::string(reinterpret_cast<const char*>(data), size / 2))
        .str(std::string(reinterpret_cast<const char*>(data) + size / 2, size - size / 2));
    e.finish();
    frame_reader r2(frame.size());
    r2.feed(frame.data(), frame.size());
    if (r2.next(body) != frame_reader::status::frame || !valid_worker_frame(body)) __builtin_trap();
    // And for the fork server's channel: an encoded `fork_failed` is one whole, valid message.
    std::string server_frame;
    encoder e2(server_frame, kind::fork_failed);
    e2.str(std::string(reinterpret_cast<const char*>(data), size));
    e2.finish();
    auto const whole = single_frame(server_frame);
    if (!whole || !valid_server_frame(*whole) || valid_server_request(*whole)) __builtin_trap();
    return 0;
}
