// A reader for the tar stream the libguestfs appliance produces (`tar -C / -cf - .`, GNU format), written
// for hostile input: the appliance parses the guest filesystem with the guest-facing kernel, so its output is
// treated as untrusted. Every length is bounds-checked, every header checksum verified, metadata records
// (GNU long names, pax headers) are capped, and a short stream is an error, never a silently short file.
//
// Understood: ustar and GNU headers, GNU 'L' (long name) and 'K' (long link) records, base-256 numbers, pax
// 'x' records (path, linkpath, size, mtime) and 'g' records (ignored). GNU and pax sparse members are
// reported as unsupported instead of being misread.
#pragma once

#include "coldscan/common/error.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::disk::detail {

enum class TarMemberType {
    regular,     // '0', '\0', '7' and unknown types (POSIX: read them as regular files)
    hard_link,   // '1'
    symlink,     // '2'
    directory,   // '5'
    special,     // '3', '4', '6': devices and fifos
    unsupported, // sparse or multi-volume members: the data in the stream is not the file's bytes
};

struct TarMember {
    std::string path;        // "/etc/passwd"; "/" for the archive's top folder (see normalise_tar_path)
    std::string link_target; // hard links: normalised like path; symlinks: the raw target
    TarMemberType type = TarMemberType::regular;
    std::uint64_t size = 0; // data bytes that follow the header
    std::int64_t mtime = 0;
    std::string unsupported_reason;
};

// "./etc/passwd" and "etc/passwd" -> "/etc/passwd"; "./" -> "/"; trailing slashes go. Bytes are kept as they
// are otherwise (guest names are raw bytes, not necessarily UTF-8).
[[nodiscard]] std::string normalise_tar_path(std::string_view raw);

// Thread rule: one thread at a time.
class TarReader {
public:
    // Reads from fd (not owned), which must stay open while the reader is used. When no byte arrives for
    // stall_timeout (zero: no limit), the reader fails: a hung writer must not hang the scan.
    explicit TarReader(int fd, std::chrono::milliseconds stall_timeout = std::chrono::milliseconds(0));

    // The next member, skipping any unread data of the previous one; std::nullopt at the end-of-archive
    // marker. Errors (io): corrupt header, oversized metadata, the stream ended early. After an error every
    // later call returns the same error.
    [[nodiscard]] Expected<std::optional<TarMember>> next();
    // Reads up to out.size() bytes of the current member's data; 0 once all of it is read. An early end of
    // the stream is an io error and fails the reader.
    [[nodiscard]] Expected<std::size_t> read(std::span<std::byte> out);
    // Data bytes of the current member not read yet.
    [[nodiscard]] std::uint64_t remaining() const noexcept { return m_remaining; }
    // Where the next byte this reader consumes lies in the stream (after next(): the member's data). For an
    // archive file read from its start, the member's offset in the file.
    [[nodiscard]] std::uint64_t position() const noexcept { return m_stream_read - (m_end - m_begin); }
    // After the end-of-archive marker: consumes the rest of the stream (block padding) up to limit bytes, so
    // the writer can finish. Error: more than limit bytes follow, or a read error.
    [[nodiscard]] Expected<void> drain(std::uint64_t limit);

private:
    [[nodiscard]] Expected<std::size_t> read_some(std::span<std::byte> out);
    // Waits until the stream has data (or ended). Error: nothing came within the stall timeout.
    [[nodiscard]] Expected<void> wait_readable();
    [[nodiscard]] Expected<bool> read_block(std::span<std::byte, 512> block); // false: clean end of stream
    [[nodiscard]] Expected<void> skip(std::uint64_t bytes);
    [[nodiscard]] Expected<std::string> read_meta(std::uint64_t size, std::string_view what);
    std::unexpected<Error> fail(std::string message);

    int m_fd;
    std::chrono::milliseconds m_stall_timeout;
    std::vector<std::byte> m_buffer;
    std::size_t m_begin = 0;
    std::size_t m_end = 0;
    std::uint64_t m_stream_read = 0; // bytes read from the fd (or sought past)
    std::uint64_t m_remaining = 0;   // data bytes of the current member not consumed
    std::uint64_t m_padding = 0;     // padding after the current member's data
    std::string m_current_path;
    bool m_at_end = false;
    std::optional<Error> m_failure;
};

} // namespace coldscan::disk::detail
