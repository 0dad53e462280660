// muster/detail/pull_iterator.hpp: the input iterator of muster's lazy ranges (map,
// map_unordered, as_completed, the process pool's map).
#pragma once

#include <cstddef>
#include <iterator>
#include <type_traits>

namespace muster::detail {

/// An input iterator over a range object that produces its elements one at a time: the range
/// provides advance() (move to the next element; may block or throw), current() (the element
/// now; may block or throw) and exhausted(). Ranges befriend this class to keep those private.
template <class Range, class Ref>
class pull_iterator {
public:
    using value_type = std::remove_cvref_t<Ref>;
    using difference_type = std::ptrdiff_t;

    pull_iterator() = default;
    explicit pull_iterator(Range* r) : r_(r) {}

    Ref operator*() const { return r_->current(); }
    auto* operator->() const
        requires std::is_lvalue_reference_v<Ref>
    {
        return &r_->current();
    }
    pull_iterator& operator++() {
        r_->advance();
        return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const pull_iterator& it, std::default_sentinel_t) {
        return it.r_ == nullptr || it.r_->exhausted();
    }

private:
    Range* r_ = nullptr;
};

}  // namespace muster::detail
