// The parallel pipeline over one file source: enumerate -> read -> SHA-256 -> scan -> record.
#pragma once

#include "coldscan/common/byte_budget.hpp"
#include "coldscan/disk/file_source.hpp"
#include "coldscan/reports/report.hpp"
#include "coldscan/scanner/scan_cache.hpp"
#include "coldscan/scanner/scan_events.hpp"
#include "coldscan/signatures/signature_set.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace coldscan::scanner {

struct SourceLocation {
    reports::TargetKind kind = reports::TargetKind::image;
    std::string target;
    std::string device;
    // For the verdict cache's level-1 keys: the image (every layer's host identity) or folder, and the
    // filesystem within it.
    std::string image_identity;
    std::string filesystem_identity;
};

struct SourceScanResult {
    reports::Counts counts;
    std::optional<Error> source_error; // the source stopped early (files it had listed were reported)
};

struct PipelineSettings {
    unsigned threads = 1;
    std::uint64_t bytes_in_flight = 256ULL << 20;
    std::uint64_t max_in_memory = 32ULL << 20; // what one file may hold in memory (the budget charge cap)
    bool keep_hardlink_results = false;        // for inventory lines of hard links
};

// Thread rule: one Pipeline per run, owned by one thread. At most two scan() calls may run at once, from two
// threads, on different sources (devices): the next filesystem's files enter while the last ones of the one
// before drain. Each runs `threads` workers (oneTBB) in its own arena; both share the bytes in flight.
class Pipeline {
public:
    Pipeline(const signatures::SignatureSet& signatures, PipelineSettings settings, ScanCache& cache,
             ScanEvents& events, Progress& progress, const std::atomic<bool>& stop);
    ~Pipeline();
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;

    // For sources that list identities first: whether a file's bytes are needed, or the cache already knows
    // its verdict (remembered for the scan() of that source that must follow).
    [[nodiscard]] disk::WantBytes want_bytes(const SourceLocation& where);
    // Scans every file of source; detections and issues are appended to report and told to events.
    // on_listed (optional) is called once, from the scan's input stage, when the source has handed over its
    // last file (or failed, or the run stops): from then on another source's scan may start.
    SourceScanResult scan(disk::FileSource& source, const SourceLocation& where, reports::Report& report,
                          const std::function<void()>& on_listed = {});
    [[nodiscard]] std::uint64_t peak_bytes_in_flight() const { return m_budget.peak(); }
    // The longest any worker waited for the signature set's engines (a background load) so far.
    [[nodiscard]] double signature_wait_seconds() const noexcept;

private:
    struct Workers;
    struct Known; // verdicts found through want_bytes(), by path
    [[nodiscard]] FileIdentity identity_of(const SourceLocation& where, const disk::FileEntry& entry) const;
    // Tells the cache where this content was seen (for retro-hunts).
    void note_place(const SourceLocation& where, const disk::FileEntry& entry, const Sha256Digest& content);
    // The content digest known for the entry: by its disk blocks (block_key) first, then by its identity.
    // blocks_known: the digest came from the blocks. Counts the lookups.
    [[nodiscard]] std::optional<Sha256Digest> known_content(const SourceLocation& where,
                                                            const disk::FileEntry& entry, bool& blocks_known);
    [[nodiscard]] std::string_view variant_of(const disk::FileEntry& entry) const;
    // One of the two arenas, for one scan() (Errc-free: a third concurrent scan is a logic error).
    [[nodiscard]] std::size_t take_arena();
    void give_back_arena(std::size_t arena);

    const signatures::SignatureSet& m_signatures;
    PipelineSettings m_settings;
    ScanCache& m_cache;
    bool m_path_variant; // the YARA rules read the file's path: verdicts are per path too
    ScanEvents& m_events;
    Progress& m_progress;
    const std::atomic<bool>& m_stop;
    ByteBudget m_budget;
    std::unique_ptr<Workers> m_workers;
    std::unique_ptr<Known> m_known;
    std::mutex m_report_mutex; // the report and the events, written by the record stages of two scans
};

} // namespace coldscan::scanner
