#include "process/frame.hpp"

#include <cstring>

namespace muster::detail::wire {

namespace {
void put_le(std::string& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_le(std::string_view s) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < s.size(); ++i)
        v |= std::uint64_t{static_cast<unsigned char>(s[i])} << (8 * i);
    return v;
}
}  // namespace

encoder::encoder(std::string& out, kind k) : out_(out), start_(out.size()) {
    put_le(out_, 0, 4);  // patched by finish()
    out_.push_back(static_cast<char>(k));
}
encoder& encoder::u8(std::uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
}
encoder& encoder::u32(std::uint32_t v) {
    put_le(out_, v, 4);
    return *this;
}
encoder& encoder::u64(std::uint64_t v) {
    put_le(out_, v, 8);
    return *this;
}
encoder& encoder::str(std::string_view s) {
    put_le(out_, s.size(), 4);
    out_.append(s);
    return *this;
}
encoder& encoder::bytes(std::string_view s) {
    out_.append(s);
    return *this;
}
std::size_t encoder::finish() {
    std::size_t const body = out_.size() - start_ - header_size;
    for (int i = 0; i < 4; ++i)
        out_[start_ + static_cast<std::size_t>(i)] = static_cast<char>((body >> (8 * i)) & 0xff);
    return body;
}

bool decoder::take(std::size_t n, std::string_view& out) noexcept {
    if (!ok_ || rest_.size() < n) {
        ok_ = false;
        out = {};
        return false;
    }
    out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
}
std::uint8_t decoder::u8() noexcept {
    std::string_view s;
    return take(1, s) ? static_cast<std::uint8_t>(s[0]) : 0;
}
std::uint32_t decoder::u32() noexcept {
    std::string_view s;
    return take(4, s) ? static_cast<std::uint32_t>(get_le(s)) : 0;
}
std::uint64_t decoder::u64() noexcept {
    std::string_view s;
    return take(8, s) ? get_le(s) : 0;
}
std::string_view decoder::str() noexcept {
    std::uint32_t const n = u32();
    std::string_view s;
    take(n, s);
    return s;
}
std::string_view decoder::rest() noexcept {
    if (!ok_) return {};
    std::string_view const r = rest_;
    rest_ = {};
    return r;
}

frame_reader::status frame_reader::next(std::string& body) {
    if (buffered() < header_size) return status::need_more;
    std::uint64_t const len = get_le(std::string_view(buf_).substr(off_, header_size));
    if (len == 0 || len > max_) return status::malformed;
    if (buffered() < header_size + len) return status::need_more;
    body.assign(buf_, off_ + header_size, static_cast<std::size_t>(len));
    off_ += header_size + static_cast<std::size_t>(len);
    // Compact once the consumed prefix dominates, so the buffer stays proportional to one frame.
    if (off_ == buf_.size()) {
        buf_.clear();
        off_ = 0;
    } else if (off_ > 65536 && off_ * 2 > buf_.size()) {
        buf_.erase(0, off_);
        off_ = 0;
    }
    return status::frame;
}

bool valid_worker_frame(std::string_view body) noexcept {
    decoder d(body);
    switch (static_cast<kind>(d.u8())) {
        case kind::ready:
            d.u32();
            break;
        case kind::result: {
            d.u64();
            switch (static_cast<outcome>(d.u8())) {
                case outcome::value:
                    d.rest();
                    break;
                case outcome::exception:
                    d.str();
                    d.str();
                    break;
                case outcome::serialization:
                case outcome::unknown_function:
                    d.str();
                    break;
                default:
                    return false;
            }
            break;
        }
        case kind::start_failed: {
            auto const why = static_cast<start_failure>(d.u8());
            if (why != start_failure::no_init && why != start_failure::initializer) return false;
            d.str();
            break;
        }
        default:
            return false;
    }
    return d.ok() && d.at_end();
}

std::optional<std::string_view> single_frame(std::string_view message) noexcept {
    if (message.size() <= header_size) return std::nullopt;
    if (get_le(message.substr(0, header_size)) != message.size() - header_size) return std::nullopt;
    return message.substr(header_size);
}

bool valid_server_frame(std::string_view body) noexcept {
    decoder d(body);
    switch (static_cast<kind>(d.u8())) {
        case kind::forked:
            d.u32();
            break;
        case kind::fork_failed:
            d.str();
            break;
        case kind::exited:
            d.u32();
            d.u32();
            break;
        case kind::start_failed:
            if (static_cast<start_failure>(d.u8()) != start_failure::no_init) return false;
            d.str();
            break;
        default:
            return false;
    }
    return d.ok() && d.at_end();
}

bool valid_server_request(std::string_view body) noexcept {
    decoder d(body);
    switch (static_cast<kind>(d.u8())) {
        case kind::fork:
            break;
        case kind::release:
            d.u32();
            break;
        default:
            return false;
    }
    return d.ok() && d.at_end();
}

}  // namespace muster::detail::wire
