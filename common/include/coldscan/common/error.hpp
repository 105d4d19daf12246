// Recoverable errors: std::expected<T, Error> with a code and a human message.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace coldscan {

enum class Errc {
    invalid_argument, // bad user input (path, option, format)
    not_found,        // a named thing does not exist
    io,               // read/write/system call failed
    unsupported,      // valid but not handled (format, filesystem)
    unsafe_image,     // the image safety gate refused it
    forbidden,        // outside what the configuration allows (a path outside every datastore root)
    corrupt,          // stored data failed its checksums or does not parse
    engine,           // a scan engine or signature load failed
    timeout,          // a bounded operation ran out of time
    cancelled,        // the caller stopped the work
    conflict,         // another holds it now (fleet mode: a job another node took, a lease lost)
    internal,         // a bug: an invariant did not hold
};

struct Error {
    Errc code = Errc::internal;
    std::string message;
};

template <typename T> using Expected = std::expected<T, Error>;

[[nodiscard]] inline std::unexpected<Error> make_error(Errc code, std::string message) {
    return std::unexpected<Error>(Error{code, std::move(message)});
}

// "what: strerror(errno)" for the current errno.
[[nodiscard]] std::string errno_message(std::string_view what);
[[nodiscard]] std::string errno_message(std::string_view what, int err);

// Stable lowercase name of an error code, for reports.
[[nodiscard]] std::string_view to_string(Errc code);

} // namespace coldscan
