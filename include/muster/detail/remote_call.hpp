// muster/detail/remote_call.hpp: how a function call travels to a worker process and back.
//
// A task function is registered, in every process of the program, under a name derived from
// its address at compile time (task_name<&fn>), by the initializer of a template variable
// (remote_registered<&fn>) that submit<&fn> odr-uses: the instantiation exists in the binary,
// so it also runs, before main, in each worker. Arguments and results are cereal binary archives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <cereal/archives/binary.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/vector.hpp>

#include "muster/detail/remote_task.hpp"
#include "muster/error.hpp"

namespace muster {

namespace detail {
template <auto Fn>
constexpr std::string_view derived_task_name() noexcept {
    // The signature of this instantiation names Fn; it is the same string in every process of
    // one binary, which is all the wire protocol needs.
    return __PRETTY_FUNCTION__;
}
}  // namespace detail

/// The name under which the task function `Fn` is registered in every process. Specialise it to
/// give a function an explicit, readable name:
/// `template <> struct muster::task_name<&my_fn> { static constexpr std::string_view value = "my_fn"; };`
/// Names must be unique within the program.
template <auto Fn>
struct task_name {
    static constexpr std::string_view value = detail::derived_task_name<Fn>();
};

namespace detail {

/// Runs a registered function in a worker: decodes the arguments from `args`, calls the
/// function and appends the encoded result to `out`. Throws serialization_error when the
/// arguments or the result cannot be (de)serialised, and whatever the function throws.
using remote_invoker = void (*)(std::string_view args, std::string& out);

/// Adds `name` to this process's table of task functions. Returns true. Thread-safe.
bool register_remote_function(std::string_view name, remote_invoker invoker);
/// The invoker registered under `name`, or nullptr.
remote_invoker find_remote_function(std::string_view name) noexcept;
/// Type name and message of the exception being handled (for remote_error).
void describe_current_exception(std::string& type_name, std::string& message);

template <class T>
struct remote_fn_traits {
    static_assert(sizeof(T) == 0,
                  "muster::process_pool runs plain functions known to every process: write "
                  "pool.submit<&fn>(args...) with fn a non-member function (or a static member "
                  "function). A lambda with captures, a std::function or another callable object "
                  "cannot travel to a worker process; move its state into the arguments.");
};
template <class R, class... P>
struct remote_fn_traits<R (*)(P...)> {
    using result = std::decay_t<R>;
    using args = std::tuple<std::decay_t<P>...>;
    static constexpr std::size_t arity = sizeof...(P);
};
template <class R, class... P>
struct remote_fn_traits<R (*)(P...) noexcept> : remote_fn_traits<R (*)(P...)> {};

template <class T>
inline constexpr bool cereal_serializable_v =
    std::is_void_v<T> ||
    (cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
     cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value);

template <class Tuple>
struct all_serializable;
template <class... T>
struct all_serializable<std::tuple<T...>> : std::bool_constant<(cereal_serializable_v<T> && ...)> {};

template <class Tuple, class... A>
std::string encode_args(A&&... a) {
    try {
        Tuple t(std::forward<A>(a)...);
        std::ostringstream os(std::ios::binary);
        {
            cereal::BinaryOutputArchive ar(os);
            ar(t);
        }
        return std::move(os).str();
    } catch (const std::exception& e) {
        throw serialization_error(std::string("muster::process_pool: the arguments could not be "
                                              "serialised: ") + e.what());
    }
}

template <class T>
T decode_value(std::string_view bytes) {
    try {
        std::istringstream is(std::string(bytes), std::ios::binary);
        cereal::BinaryInputArchive ar(is);
        T v{};
        ar(v);
        return v;
    } catch (const std::exception& e) {
        throw serialization_error(std::string("muster::process_pool: a value could not be "
                                              "deserialised: ") + e.what());
    }
}

template <class T>
void encode_value(const T& v, std::string& out) {
    try {
        std::ostringstream os(std::ios::binary);
        {
            cereal::BinaryOutputArchive ar(os);
            ar(v);
        }
        out += std::move(os).str();
    } catch (const std::exception& e) {
        throw serialization_error(std::string("muster::process_pool: the result could not be "
                                              "serialised: ") + e.what());
    }
}

template <auto Fn>
void invoke_remote(std::string_view args, std::string& out) {
    using tr = remote_fn_traits<decltype(Fn)>;
    auto t = decode_value<typename tr::args>(args);
    if constexpr (std::is_void_v<typename tr::result>) {
        std::apply(Fn, std::move(t));
    } else {
        encode_value(std::apply(Fn, std::move(t)), out);
    }
}

/// Odr-using this variable registers Fn in every process of the program (see the file comment).
template <auto Fn>
inline const bool remote_registered = register_remote_function(task_name<Fn>::value, &invoke_remote<Fn>);

/// One element of a map chunk's answer: the value, or the exception's type name and message.
template <class R>
struct chunk_item {
    std::optional<R> value;
    std::string type_name;
    std::string message;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(value, type_name, message);
    }
};

/// The worker side of map(chunksize = n): applies Fn to each input of a chunk; an element's
/// exception is kept with that element, and the rest of the chunk still runs.
template <auto Fn>
std::vector<chunk_item<typename remote_fn_traits<decltype(Fn)>::result>> run_chunk(
    std::vector<std::tuple_element_t<0, typename remote_fn_traits<decltype(Fn)>::args>> inputs) {
    std::vector<chunk_item<typename remote_fn_traits<decltype(Fn)>::result>> out(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        try {
            out[i].value.emplace(Fn(std::move(inputs[i])));
        } catch (...) {
            describe_current_exception(out[i].type_name, out[i].message);
        }
    }
    return out;
}

/// Decodes a worker's result bytes into the future of `task` and completes it. Called on the
/// supervisor thread; a decoding failure fails only this future, with serialization_error.
template <class R>
void deliver_result(task_base* task, std::string_view bytes) noexcept {
    auto* t = static_cast<remote_task<R>*>(task);
    if constexpr (std::is_void_v<R>) {
        t->set_value();
    } else {
        try {
            t->set_value(decode_value<R>(bytes));
        } catch (...) {
            t->set_error(std::current_exception());
        }
    }
}

using deliver_fn = void (*)(task_base*, std::string_view) noexcept;

}  // namespace detail
}  // namespace muster
