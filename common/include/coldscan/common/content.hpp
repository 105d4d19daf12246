// A regular file's bytes, as handed from a filesystem reader to the engines.
//
// Small files are held in memory; big files stay behind a random-access reader (a host file, a spilled
// temporary file, later an NBD export) so they are streamed, never loaded whole.
// Thread rule: immutable after construction; read_at() is safe from any thread.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace coldscan {

// Random access to bytes that are not held in memory. Implementations must allow concurrent read_at().
class ByteReader {
public:
    virtual ~ByteReader() = default;
    // Reads up to out.size() bytes at offset; returns the count (0 at the end) or an io error.
    [[nodiscard]] virtual Expected<std::size_t> read_at(std::uint64_t offset,
                                                        std::span<std::byte> out) const = 0;
    // A descriptor whose bytes equal this reader's (offset 0 = first byte), or -1.
    [[nodiscard]] virtual int fd() const noexcept { return -1; }
};

class Content {
public:
    Content() = default;
    static Content from_memory(std::vector<std::byte> bytes);
    // Takes a read-only descriptor of a file whose first `size` bytes are the content.
    static Content from_fd(UniqueFd fd, std::uint64_t size);
    static Content from_reader(std::shared_ptr<const ByteReader> reader, std::uint64_t size);

    [[nodiscard]] std::uint64_t size() const noexcept { return m_size; }
    // The bytes, when held in memory.
    [[nodiscard]] std::optional<std::span<const std::byte>> memory() const noexcept;
    // A descriptor holding the bytes from offset 0, when file-backed; else -1.
    [[nodiscard]] int fd() const noexcept;
    // Reads up to out.size() bytes at offset; returns the count (0 at the end) or an io error.
    [[nodiscard]] Expected<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) const;
    // Bytes this content holds in process memory (what the in-flight budget is charged for).
    [[nodiscard]] std::uint64_t resident_bytes() const noexcept { return m_in_memory ? m_size : 0; }

private:
    bool m_in_memory = true;
    std::uint64_t m_size = 0;
    std::vector<std::byte> m_bytes;
    std::shared_ptr<const ByteReader> m_reader;
};

// Reads a whole file descriptor region through pread; used by from_fd().
class FdReader final : public ByteReader {
public:
    explicit FdReader(UniqueFd fd) : m_fd(std::move(fd)) {}
    [[nodiscard]] Expected<std::size_t> read_at(std::uint64_t offset,
                                                std::span<std::byte> out) const override;
    [[nodiscard]] int fd() const noexcept override { return m_fd.get(); }

private:
    UniqueFd m_fd;
};

} // namespace coldscan
