#include "coldscan/common/error.hpp"

#include <cerrno>
#include <cstring>

namespace coldscan {

std::string errno_message(std::string_view what, int err) {
    std::string message(what);
    message += ": ";
    message += std::strerror(err);
    return message;
}

std::string errno_message(std::string_view what) {
    return errno_message(what, errno);
}

std::string_view to_string(Errc code) {
    switch (code) {
    case Errc::invalid_argument:
        return "invalid_argument";
    case Errc::not_found:
        return "not_found";
    case Errc::io:
        return "io";
    case Errc::unsupported:
        return "unsupported";
    case Errc::unsafe_image:
        return "unsafe_image";
    case Errc::forbidden:
        return "forbidden";
    case Errc::corrupt:
        return "corrupt";
    case Errc::engine:
        return "engine";
    case Errc::timeout:
        return "timeout";
    case Errc::cancelled:
        return "cancelled";
    case Errc::conflict:
        return "conflict";
    case Errc::internal:
        return "internal";
    }
    return "internal";
}

} // namespace coldscan
