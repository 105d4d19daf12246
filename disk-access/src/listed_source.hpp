// A sequential FileSource over a filesystem listed with identities before any byte moves (the appliance
// path when a verdict cache is in use).
//
// The whole filesystem is listed first (name, size, inode, mtime, ctime of every regular file), and the
// caller's WantBytes is asked once per file (once per hard-link group). Files it does not want come out
// first, with bytes_withheld and no transfer at all; then the wanted files, largest first (so the longest
// scans start early and no big file is left for the tail), each read whole with bounded pread calls. A file
// whose read fails gets ERROR from the pipeline; a failed call does not end the source, so every listed file
// is still reported.
#pragma once

#include "coldscan/disk/file_source.hpp"

#include <cstddef>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace coldscan::disk::detail {

struct ListedFile {
    std::string path; // absolute inside the filesystem
    std::uint64_t size = 0;
    std::uint64_t device = 0; // st_dev: inodes are unique per device (btrfs subvolumes differ)
    std::uint64_t links = 1;  // st_nlink
    FileStamp stamp;
};

// Positional reads of files on the listed filesystem. Thread rule: one call at a time.
class FileReads {
public:
    virtual ~FileReads() = default;
    // Up to out.size() bytes of path at offset; the count (0 at the end). Error: io.
    [[nodiscard]] virtual Expected<std::size_t> pread(const std::string& path, std::uint64_t offset,
                                                      std::span<std::byte> out) = 0;
};

// Thread rule: one thread at a time (read() only for the entry next() just returned).
class ListedSource final : public FileSource {
public:
    ListedSource(std::vector<ListedFile> files, WantBytes want, std::unique_ptr<FileReads> reads,
                 SourceOptions options);

    Expected<std::optional<FileEntry>> next() override;
    [[nodiscard]] ReadOrder read_order() const noexcept override { return ReadOrder::sequential; }
    Expected<Content> read(const FileEntry& entry) override;
    [[nodiscard]] std::optional<std::uint64_t> expected_bytes() const override { return m_expected_bytes; }
    [[nodiscard]] std::optional<std::uint64_t> expected_files() const override { return m_expected_files; }

private:
    // Asks WantBytes about every hard-link group and orders the entries; on the first next().
    void plan();
    [[nodiscard]] Expected<std::size_t> read_into(const std::string& path, std::uint64_t offset,
                                                  std::span<std::byte> out);

    std::vector<ListedFile> m_files;
    WantBytes m_want;
    std::unique_ptr<FileReads> m_reads;
    SourceOptions m_options;
    std::uint64_t m_expected_bytes = 0;
    std::uint64_t m_expected_files = 0;
    bool m_planned = false;
    std::deque<FileEntry> m_queue;
    std::optional<std::string> m_current; // the wanted entry next() just returned
    std::vector<std::byte> m_chunk;
};

} // namespace coldscan::disk::detail
