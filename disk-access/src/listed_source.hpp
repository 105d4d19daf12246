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
    std::uint64_t device = 0; // with the inode, what makes two names one file's data: st_dev (btrfs
                              // subvolumes differ); on the direct path the data attribute (NTFS streams)
    std::uint64_t links = 1;  // st_nlink
    FileStamp stamp;
    std::optional<Error> problem; // the reader cannot read it: reported ERROR, never asked about or read
    std::optional<std::string> block_key; // see FileEntry::block_key
};

// Positional reads of files on the listed filesystem. Thread rule: one call at a time, unless the source is
// built with ReadOrder::random (then from any thread).
class FileReads {
public:
    virtual ~FileReads() = default;
    // Up to out.size() bytes of path at offset; the count (0 at the end). Error: io.
    [[nodiscard]] virtual Expected<std::size_t> pread(const std::string& path, std::uint64_t offset,
                                                      std::span<std::byte> out) = 0;
};

// Thread rule: next() from one thread. With ReadOrder::sequential (the appliance) read() only for the entry
// next() just returned; with ReadOrder::random (a thread-safe FileReads) read() for any wanted entry, from
// any thread.
class ListedSource final : public FileSource {
public:
    ListedSource(std::vector<ListedFile> files, WantBytes want, std::unique_ptr<FileReads> reads,
                 SourceOptions options, ReadOrder order = ReadOrder::sequential);

    Expected<std::optional<FileEntry>> next() override;
    [[nodiscard]] ReadOrder read_order() const noexcept override { return m_order; }
    Expected<Content> read(const FileEntry& entry) override;
    [[nodiscard]] std::optional<std::uint64_t> expected_bytes() const override { return m_expected_bytes; }
    [[nodiscard]] std::optional<std::uint64_t> expected_files() const override { return m_expected_files; }

private:
    // Asks WantBytes about every hard-link group and orders the entries; on the first next().
    void plan();
    [[nodiscard]] Expected<std::size_t> read_into(const std::string& path, std::uint64_t offset,
                                                  std::span<std::byte> out);
    [[nodiscard]] Expected<Content> read_whole(const FileEntry& entry, std::vector<std::byte>& chunk);

    std::vector<ListedFile> m_files;
    WantBytes m_want;
    std::unique_ptr<FileReads> m_reads;
    SourceOptions m_options;
    ReadOrder m_order;
    std::uint64_t m_expected_bytes = 0;
    std::uint64_t m_expected_files = 0;
    bool m_planned = false;
    std::deque<FileEntry> m_queue;
    std::optional<std::string> m_current; // the wanted entry next() just returned
    std::vector<std::byte> m_chunk;
};

} // namespace coldscan::disk::detail
