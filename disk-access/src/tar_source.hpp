// A sequential FileSource over a tar stream, with a check that nothing goes missing.
//
// The libguestfs appliance streams a filesystem as tar. Tar skips what it cannot read and the stream can end
// early (appliance crash, I/O error on a damaged image), so the source is also given the full list of names
// the filesystem holds (taken before streaming). When the stream ends, every listed name the stream did not
// deliver is asked about (through the producer, after it has stopped) and each one that is a regular file is
// returned as an entry with a problem. Files the producer says it had trouble reading after they were
// delivered get a second, problem entry too, because their delivered bytes may be padding.
#pragma once

#include "coldscan/common/unique_fd.hpp"
#include "coldscan/disk/file_source.hpp"
#include "tar_reader.hpp"

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace coldscan::disk::detail {

struct TarProducerResult {
    std::optional<Error> error; // the producer failed: the stream may be incomplete
    // Files the producer reported errors for, with its message (paths normalised like tar members).
    std::vector<std::pair<std::string, std::string>> file_errors;
};

struct RegularFile {
    std::string path;
    std::uint64_t size = 0;
};

// Whatever writes the tar stream. Its destructor must stop it (the stream's read end is closed first, so a
// writer blocked on it fails) and wait for it.
class TarProducer {
public:
    virtual ~TarProducer() = default;
    // Waits until the producer has stopped writing and returns how it ended. Called once.
    [[nodiscard]] virtual TarProducerResult finish() = 0;
    // Which of these paths are regular files (with their sizes). Called only after finish().
    [[nodiscard]] virtual Expected<std::vector<RegularFile>>
    regular_files(const std::vector<std::string>& paths) = 0;
};

// The file a GNU tar message is about ("tar: ./caf\\303\\251: Read error ..." -> "/café"), with tar's
// quoting of the name undone; std::nullopt when the message names no member.
[[nodiscard]] std::optional<std::string> tar_complaint_path(std::string_view line);

// Thread rule: one thread at a time (read() only for the entry next() just returned).
class TarSource final : public FileSource {
public:
    // listing: absolute paths ("/etc/passwd") of everything on the filesystem, in any order; may be empty.
    TarSource(UniqueFd stream, std::unique_ptr<TarProducer> producer, std::vector<std::string> listing,
              SourceOptions options, std::optional<std::uint64_t> expected_bytes,
              std::optional<std::uint64_t> expected_files);
    ~TarSource() override;
    TarSource(const TarSource&) = delete;
    TarSource& operator=(const TarSource&) = delete;

    [[nodiscard]] Expected<std::optional<FileEntry>> next() override;
    [[nodiscard]] ReadOrder read_order() const noexcept override { return ReadOrder::sequential; }
    [[nodiscard]] Expected<Content> read(const FileEntry& entry) override;
    [[nodiscard]] std::optional<std::uint64_t> expected_bytes() const override { return m_expected_bytes; }
    [[nodiscard]] std::optional<std::uint64_t> expected_files() const override { return m_expected_files; }

private:
    enum class Phase { streaming, reporting, done };

    void mark_seen(const std::string& path, std::optional<std::uint64_t> regular_size);
    [[nodiscard]] std::optional<std::uint64_t> regular_size(const std::string& path) const;
    // The stream is over (stream_error set when it broke): stop the producer and queue problem entries.
    void end_stream(std::optional<Error> stream_error);
    [[nodiscard]] Expected<Content> read_spilled(std::uint64_t size);

    UniqueFd m_stream;
    TarReader m_reader;
    std::unique_ptr<TarProducer> m_producer;
    SourceOptions m_options;
    std::optional<std::uint64_t> m_expected_bytes;
    std::optional<std::uint64_t> m_expected_files;

    std::vector<std::string> m_listing;        // sorted, unique
    std::vector<std::uint8_t> m_listing_seen;  // per m_listing entry: the stream delivered it
    std::vector<std::uint64_t> m_listing_size; // per m_listing entry: size, when a regular file
    std::unordered_map<std::string, std::uint64_t> m_unlisted_sizes; // regular files delivered but not listed

    Phase m_phase = Phase::streaming;
    std::optional<std::string> m_current; // path of the entry read() may read
    std::uint64_t m_current_size = 0;
    std::deque<FileEntry> m_problems;
    std::optional<Error> m_final_error;
    std::vector<std::byte> m_chunk;
};

} // namespace coldscan::disk::detail
