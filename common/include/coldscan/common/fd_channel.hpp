// Messages with attached descriptors between two processes, over a connected AF_UNIX stream socket.
//
// Each message is a 4-byte length, the body, and up to k_max_message_fds descriptors riding on its first
// byte (SCM_RIGHTS). Bodies are bounded so that a broken or hostile peer cannot make us allocate without
// limit.
// Thread rule: one sender and one receiver at a time per socket.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan {

inline constexpr std::size_t k_max_message_fds = 4;
inline constexpr std::size_t k_max_message_bytes = 64U << 20;

struct FdMessage {
    std::string body;
    std::vector<UniqueFd> fds;
};

struct SocketPair {
    UniqueFd first;
    UniqueFd second;
};

// A connected AF_UNIX stream pair, both ends close-on-exec. Error: io.
[[nodiscard]] Expected<SocketPair> make_socket_pair();

// Sends body and fds as one message (never raises SIGPIPE). Errors: io (the peer is gone: Errc::io too).
[[nodiscard]] Expected<void> send_message(int socket, std::string_view body, std::span<const int> fds = {});

// Waits until a message (or the peer's close) is there to receive. Errors: timeout, io.
[[nodiscard]] Expected<void> wait_for_message(int socket, std::chrono::milliseconds timeout);

// Receives one message, waiting at most timeout (nullopt: no limit). Errors: timeout; not_found when the peer
// closed the socket cleanly between messages; io or corrupt for anything else (a message cut short, a body
// over k_max_message_bytes).
[[nodiscard]] Expected<FdMessage> receive_message(int socket,
                                                  std::optional<std::chrono::milliseconds> timeout);

} // namespace coldscan
