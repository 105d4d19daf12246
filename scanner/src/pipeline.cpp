// The pipeline over one file source.
//
// Stages: (1) serial input: the next entry from the source; sequential sources (the appliance) also hand
// over the bytes here, because they cannot be read later. (2) parallel: the cache by identity (random
// sources; sequential ones asked it through want_bytes() before listing), read, SHA-256, the cache by
// content. (3) parallel: ClamAV + YARA on the bytes, once per distinct content in flight, and the verdict
// stored when complete. (4) serial, out of order: record counts, detections, issues and inventory lines.
//
// Backpressure is on bytes, not only items: every item that may be read is charged for the bytes it holds in
// memory (capped at max_in_memory; bigger files are streamed from a file descriptor) against a ByteBudget
// before it is read, and released as soon as its verdict is known. The input stage is the only one that
// blocks on the budget, and oneTBB carries an item through the stages on the thread that picked it up, so
// the budget can always be paid back.
//
// No exception leaves a stage: a failing file becomes ERROR(reason), a failing source ends this source with
// an error, and every file is counted exactly once. A verdict comes from the cache only when its record was
// found and decoded; everything else is scanned.
#include "coldscan/scanner/pipeline.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/scanner/added_line_engines.hpp"
#include "coldscan/scanner/file_scanner.hpp"
#include "tsan_annotations.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <mutex>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/task_arena.h>
#include <unordered_map>

namespace coldscan::scanner {
namespace {

constexpr double k_slow_scan_seconds = 0.25; // engine scans this long are named in the debug log

struct Item {
    disk::FileEntry entry;
    std::optional<Content> content;
    std::optional<Error> read_error;
    std::optional<Sha256Digest> digest;
    std::optional<Sha256Digest>
        known_digest;                      // level 1's, when its verdict is missing: read, not hashed again
    std::optional<PendingVerdict> pending; // a verdict of an older set: the added lines' scan may confirm it
    Outcome outcome;
    bool decided = false; // outcome known (from the cache) before the scan stage
    std::uint64_t charge = 0;
};

// What an inventory line of a hard link repeats from the file it names.
struct LinkedResult {
    OutcomeKind kind = OutcomeKind::error;
    std::optional<std::string> sha256;
    std::string reason;
    std::vector<std::string> signatures;
};

std::vector<std::string> signature_names(const Outcome& outcome) {
    std::vector<std::string> names;
    for (const auto& detection : outcome.detections) {
        names.push_back(display_name(detection));
    }
    return names;
}

} // namespace

struct Pipeline::Workers {
    Workers(unsigned threads, const signatures::SignatureSet& signatures)
        : arenas{tbb::task_arena(static_cast<int>(threads)), tbb::task_arena(static_cast<int>(threads))},
          added(signatures) {}
    // Whether a verdict of an older set stands: the engines of the lines added since find nothing in the
    // bytes, and neither hits a limit nor fails.
    [[nodiscard]] bool stands_after_added_lines(const PendingVerdict& pending, const Content& content,
                                                std::string_view path);

    // Two scans may run at once (the next source's starts while the last files of the one before drain):
    // each in its own arena, so neither can run inside the other's wait and block it.
    std::array<tbb::task_arena, 2> arenas;
    std::mutex arenas_mutex;
    std::array<bool, 2> arena_busy{};
    tbb::enumerable_thread_specific<std::optional<Expected<FileScanner>>> scanners;
    std::atomic<std::int64_t> longest_engine_wait_ns{0};
    AddedLineEngines added; // before the scanners of its engines, which go first
    tbb::enumerable_thread_specific<std::map<const signatures::SignatureSet*, Expected<FileScanner>>>
        added_scanners;
};

bool Pipeline::Workers::stands_after_added_lines(const PendingVerdict& pending, const Content& content,
                                                 std::string_view path) {
    const auto sets = added.for_set(pending.made_with, *pending.change);
    if (!sets) {
        return false;
    }
    const std::array<const signatures::SignatureSet*, 2> engines{
        pending.recheck.clamav && sets->clamav ? &*sets->clamav : nullptr,
        pending.recheck.yara && sets->yara ? &*sets->yara : nullptr};
    auto& scanners_here = added_scanners.local();
    for (const auto* set : engines) {
        if (set == nullptr) {
            continue;
        }
        auto found = scanners_here.find(set);
        if (found == scanners_here.end()) {
            found = scanners_here.emplace(set, FileScanner::create(*set)).first;
        }
        if (!found->second || found->second->scan(content, path).kind != OutcomeKind::clean) {
            return false;
        }
    }
    return true;
}

std::size_t Pipeline::take_arena() {
    std::lock_guard lock(m_workers->arenas_mutex);
    const std::size_t free = m_workers->arena_busy[0] ? 1 : 0;
    if (m_workers->arena_busy[free]) {
        throw std::logic_error("Pipeline::scan: more than two scans at once");
    }
    m_workers->arena_busy[free] = true;
    return free;
}

void Pipeline::give_back_arena(std::size_t arena) {
    std::lock_guard lock(m_workers->arenas_mutex);
    m_workers->arena_busy[arena] = false;
}

double Pipeline::signature_wait_seconds() const noexcept {
    return static_cast<double>(m_workers->longest_engine_wait_ns.load()) / 1e9;
}

struct Pipeline::Known {
    struct Verdict {
        Sha256Digest digest;
        Outcome outcome;
    };
    std::mutex mutex;
    // By source (its device) and path: two sources may be in the pipeline at once.
    std::unordered_map<std::string, std::unordered_map<std::string, Verdict>> by_source;

    std::optional<Verdict> take(const std::string& device, const std::string& path) {
        std::lock_guard lock(mutex);
        auto& by_path = by_source[device];
        auto found = by_path.find(path);
        if (found == by_path.end()) {
            return std::nullopt;
        }
        Verdict verdict = std::move(found->second);
        by_path.erase(found);
        return verdict;
    }
};

Pipeline::Pipeline(const signatures::SignatureSet& signatures, PipelineSettings settings, ScanCache& cache,
                   ScanEvents& events, Progress& progress, const std::atomic<bool>& stop)
    : m_signatures(signatures), m_settings(settings), m_cache(cache),
      m_path_variant(signatures.yara() != nullptr && signatures.yara()->info().reads_file_path),
      m_events(events), m_progress(progress), m_stop(stop), m_budget(settings.bytes_in_flight),
      m_workers(std::make_unique<Workers>(std::max(1U, settings.threads), signatures)),
      m_known(std::make_unique<Known>()) {}

Pipeline::~Pipeline() = default;

FileIdentity Pipeline::identity_of(const SourceLocation& where, const disk::FileEntry& entry) const {
    const disk::FileStamp& stamp = *entry.stamp;
    return FileIdentity{where.image_identity, where.filesystem_identity,
                        entry.path,           stamp.inode,
                        stamp.generation,     entry.size,
                        stamp.mtime_ns,       stamp.ctime_ns};
}

void Pipeline::note_place(const SourceLocation& where, const disk::FileEntry& entry,
                          const Sha256Digest& content) {
    m_cache.remember_place(PlaceKey{where.image_identity, where.filesystem_identity, entry.path},
                           ContentPlace{where.target, where.device, entry.path, 0}, content);
}

std::string_view Pipeline::variant_of(const disk::FileEntry& entry) const {
    return m_path_variant ? std::string_view(entry.path) : std::string_view{};
}

namespace {

// A block key as a level-1 identity: its own kind of key (no path, no timestamps), the size checked.
FileIdentity block_identity(const disk::FileEntry& entry) {
    FileIdentity identity;
    identity.image_identity = *entry.block_key;
    identity.filesystem_uuid = "blocks";
    identity.size = entry.size;
    return identity;
}

} // namespace

std::optional<Sha256Digest> Pipeline::known_content(const SourceLocation& where, const disk::FileEntry& entry,
                                                    bool& blocks_known) {
    blocks_known = false;
    if (entry.block_key) {
        if (auto digest = m_cache.find_content(block_identity(entry))) {
            m_cache.note(ScanCache::Event::block_hit);
            blocks_known = true;
            note_place(where, entry, *digest);
            return digest;
        }
        m_cache.note(ScanCache::Event::block_miss);
    }
    if (!entry.stamp) {
        return std::nullopt;
    }
    auto digest = m_cache.find_content(identity_of(where, entry));
    m_cache.note(digest ? ScanCache::Event::identity_hit : ScanCache::Event::identity_miss);
    if (digest) {
        note_place(where, entry, *digest);
    }
    return digest;
}

disk::WantBytes Pipeline::want_bytes(const SourceLocation& where) {
    {
        std::lock_guard lock(m_known->mutex);
        m_known->by_source.erase(where.device);
    }
    if (m_cache.identity_use() == IdentityUse::ignore) {
        return {};
    }
    return [this, where](const disk::FileEntry& entry) {
        bool blocks_known = false;
        const auto digest = known_content(where, entry, blocks_known);
        if (!digest) {
            return true;
        }
        auto outcome = m_cache.find_verdict(*digest, variant_of(entry));
        if (!outcome) {
            return true; // the bytes are needed; the verdict miss is counted when they are scanned
        }
        if (blocks_known) {
            m_cache.note(ScanCache::Event::reused_by_blocks, entry.size);
        }
        std::lock_guard lock(m_known->mutex);
        m_known->by_source[where.device].insert_or_assign(entry.path,
                                                          Known::Verdict{*digest, std::move(*outcome)});
        return false;
    };
}

SourceScanResult Pipeline::scan(disk::FileSource& source, const SourceLocation& where,
                                reports::Report& report, const std::function<void()>& on_listed) {
    SourceScanResult result;
    bool listed = false; // on_listed called (by the serial input stage, or at the end)
    const auto end_of_input = [&](tbb::flow_control& control) -> Item* {
        control.stop();
        if (!std::exchange(listed, true) && on_listed) {
            on_listed();
        }
        return nullptr;
    };
    const bool sequential = source.read_order() == disk::ReadOrder::sequential;
    std::unordered_map<std::string, LinkedResult> linked_results;
    std::vector<disk::FileEntry> links;

    m_progress.source_bytes_base = m_progress.bytes_done.load();
    m_progress.source_expected_bytes = source.expected_bytes().value_or(0);

    // Sequential sources hand over the bytes in the input stage, random ones in the parallel read stage.
    auto read_content = [&source](Item& item) {
        auto content = source.read(item.entry);
        if (content) {
            item.content = std::move(*content);
        } else {
            item.read_error = content.error();
        }
    };

    auto input = [&](tbb::flow_control& control) -> Item* {
        if (m_stop.load() || result.source_error) {
            return end_of_input(control);
        }
        try {
            auto next = source.next();
            if (!next) {
                result.source_error = next.error();
                return end_of_input(control);
            }
            if (!next->has_value()) {
                return end_of_input(control);
            }
            auto item = std::make_unique<Item>();
            item->entry = std::move(**next);
            if (item->entry.hardlink_of || item->entry.problem || item->entry.bytes_withheld) {
                return item.release();
            }
            item->charge = std::min(item->entry.size, m_settings.max_in_memory);
            m_budget.acquire(item->charge);
            if (sequential) {
                read_content(*item);
            }
            return item.release();
        } catch (const std::exception& e) {
            result.source_error = Error{Errc::internal, std::string("file source failed: ") + e.what()};
            return end_of_input(control);
        }
    };

    // The verdict is known without the engines: the content is not needed any more.
    auto decide = [&](Item& item, Outcome outcome, ScanCache::Event how) {
        item.outcome = std::move(outcome);
        item.decided = true;
        m_cache.note(how);
        m_cache.note(ScanCache::Event::not_scanned, item.entry.size);
        if (!item.content) {
            m_cache.note(ScanCache::Event::not_read, item.entry.size);
        }
        item.content.reset();
        m_budget.release(std::exchange(item.charge, 0));
    };

    // Level 1 for random sources: a known identity and a known verdict skip the read.
    auto decide_by_identity = [&](Item& item) {
        bool blocks_known = false;
        const auto digest = known_content(where, item.entry, blocks_known);
        if (!digest) {
            return;
        }
        if (auto outcome = m_cache.find_verdict(*digest, variant_of(item.entry))) {
            item.digest = *digest;
            if (blocks_known) {
                m_cache.note(ScanCache::Event::reused_by_blocks, item.entry.size);
            }
            decide(item, std::move(*outcome), ScanCache::Event::verdict_hit);
        } else {
            item.known_digest = *digest; // level 1 is trusted: reading the bytes again need not hash them
        }
    };

    // The bytes are read: level 1 learns their digest, level 2 is asked for its verdict.
    auto hash_and_look_up = [&](Item& item) {
        const auto& entry = item.entry;
        auto digest = sha256_of(*item.content);
        if (!digest) {
            item.read_error = digest.error();
            return;
        }
        item.digest = *digest;
        note_place(where, entry, *digest);
        if (entry.stamp) {
            m_cache.remember_content(identity_of(where, entry), *digest);
        }
        if (entry.block_key) {
            m_cache.remember_content(block_identity(entry), *digest);
        }
        if (auto outcome = m_cache.find_verdict(*digest, variant_of(entry))) {
            decide(item, std::move(*outcome), ScanCache::Event::verdict_hit);
        } else {
            m_cache.note(ScanCache::Event::verdict_miss);
            item.pending = m_cache.find_pending(*digest, variant_of(entry));
        }
    };

    auto read_and_hash = [&](Item* item) -> Item* {
        const auto& entry = item->entry;
        if (entry.hardlink_of || entry.problem) {
            return item;
        }
        try {
            if (entry.bytes_withheld) {
                if (auto known = m_known->take(where.device, entry.path)) {
                    item->digest = known->digest;
                    decide(*item, std::move(known->outcome), ScanCache::Event::verdict_hit);
                } else {
                    item->outcome = Outcome{OutcomeKind::error, "not read: its cached verdict was lost", {}};
                    item->decided = true;
                }
                return item;
            }
            const bool identity_first = !sequential && !entry.cache_asked &&
                                        (entry.stamp || entry.block_key) &&
                                        m_cache.identity_use() == IdentityUse::trust;
            if (identity_first) {
                decide_by_identity(*item);
                if (item->decided) {
                    return item;
                }
            }
            if (!item->content && !item->read_error) {
                read_content(*item);
            }
            if (!item->content) {
                return item;
            }
            if (!item->known_digest) {
                hash_and_look_up(*item);
            } else {
                item->digest = item->known_digest;
                m_cache.note(ScanCache::Event::verdict_miss);
                item->pending = m_cache.find_pending(*item->digest, variant_of(entry));
            }
        } catch (const std::exception& e) {
            item->read_error = Error{Errc::internal, e.what()};
        }
        return item;
    };

    auto run_engines = [&](Item& item) {
        if (item.pending) { // before the whole set's engine, which may still be loading
            const bool stood =
                m_workers->stands_after_added_lines(*item.pending, *item.content, item.entry.path);
            m_cache.count_recheck(*item.digest, stood);
            if (stood) {
                return item.pending->outcome;
            }
        }
        auto& slot = m_workers->scanners.local();
        if (!slot) {
            const auto start = std::chrono::steady_clock::now();
            slot.emplace(FileScanner::create(m_signatures)); // waits for a background load
            const auto waited =
                std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
                    .count();
            auto& longest = m_workers->longest_engine_wait_ns;
            for (auto seen = longest.load(); waited > seen && !longest.compare_exchange_weak(seen, waited);) {
            }
        }
        if (!*slot) {
            return Outcome{OutcomeKind::error, (*slot).error().message, {}};
        }
        m_cache.note(ScanCache::Event::engine_scan);
        const auto start = std::chrono::steady_clock::now();
        auto outcome = (**slot).scan(*item.content, item.entry.path);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (seconds >= k_slow_scan_seconds) {
            spdlog::debug("{}: the engines took {:.2f} s ({} bytes)", printable(item.entry.path), seconds,
                          item.entry.size);
        }
        return outcome;
    };

    auto scan_file = [&](Item* item) -> Item* {
        if (item->entry.hardlink_of || item->decided) {
            return item;
        }
        try {
            if (item->entry.problem) {
                item->outcome = Outcome{OutcomeKind::error, item->entry.problem->message, {}};
            } else if (item->read_error) {
                item->outcome = Outcome{OutcomeKind::error, "read failed: " + item->read_error->message, {}};
            } else if (item->content && item->digest) {
                ScanCache::Served served = ScanCache::Served::engines;
                item->outcome = m_cache.scan_once(
                    *item->digest, variant_of(item->entry), [&] { return run_engines(*item); }, served);
                if (served != ScanCache::Served::engines) {
                    m_cache.note(ScanCache::Event::same_content_wait);
                    m_cache.note(ScanCache::Event::not_scanned, item->entry.size);
                }
            }
        } catch (const std::exception& e) {
            item->outcome = Outcome{OutcomeKind::error, std::string("scan failed: ") + e.what(), {}};
        }
        item->content.reset();
        m_budget.release(std::exchange(item->charge, 0));
        return item;
    };

    auto record_item = [&](Item* raw) {
        std::unique_ptr<Item> item(raw);
        const std::lock_guard report_lock(m_report_mutex); // another source's scan may record too
        try {
            const auto& entry = item->entry;
            if (entry.hardlink_of) {
                ++result.counts.hardlinks;
                links.push_back(entry);
                return;
            }
            const auto& outcome = item->outcome;
            result.counts.add(outcome.kind, entry.size);
            m_progress.files_done.fetch_add(1);
            m_progress.bytes_done.fetch_add(entry.size);
            std::optional<std::string> sha256;
            if (item->digest) {
                sha256 = to_hex(*item->digest);
            }
            for (const auto& detection : outcome.detections) {
                reports::DetectionRecord record{where.target, where.device,        entry.path,
                                                detection,    sha256.value_or(""), entry.size};
                m_events.on_detection(where.kind, record);
                report.detections.push_back(std::move(record));
            }
            if (outcome.kind == OutcomeKind::error || outcome.kind == OutcomeKind::limit_exceeded ||
                outcome.kind == OutcomeKind::skipped) {
                reports::IssueRecord issue{where.target, where.device, entry.path,
                                           std::string(to_string(outcome.kind)), outcome.reason};
                m_events.on_issue(where.kind, issue);
                report.errors.push_back(std::move(issue));
            }
            reports::InventoryRecord line{
                where.target, where.device, entry.path,     entry.size,
                sha256,       outcome.kind, outcome.reason, signature_names(outcome),
                std::nullopt};
            m_events.on_file(line);
            if (m_settings.keep_hardlink_results) {
                linked_results.emplace(entry.path,
                                       LinkedResult{outcome.kind, sha256, outcome.reason, line.signatures});
            }
        } catch (const std::exception& e) {
            spdlog::error("cannot record {}: {}", printable(item->entry.path), e.what());
        }
    };

    // The orderings parallel_pipeline guarantees, told to ThreadSanitizer (tsan_annotations.hpp; no-ops in
    // other builds): the caller before every stage, an item's stage before its next one, a serial stage's
    // runs one after another, every stage before the caller goes on. Each stage reads its captures
    // before its first acquire, hence the ignored reads.
    struct Order {
        char start, input, record, end;
    } order{};
    const auto enter = [&order](const void* serial) {
        detail::tsan_acquire(&order.start);
        detail::tsan_acquire(serial);
    };
    const auto leave = [&order](const void* serial) {
        detail::tsan_release(serial);
        detail::tsan_release(&order.end);
    };
    const auto parallel_stage = [&](auto& stage) {
        return [&, stage_fn = &stage](Item* item) -> Item* {
            {
                const detail::TsanIgnoreReads reading_captures;
                enter(item);
            }
            Item* out = (*stage_fn)(item);
            leave(out);
            return out;
        };
    };
    detail::tsan_release(&order.start);

    const auto tokens = static_cast<std::size_t>(std::max(1U, m_settings.threads) * 4);
    const std::size_t arena = take_arena();
    m_workers->arenas[arena].execute([&] {
        tbb::parallel_pipeline(
            tokens,
            tbb::make_filter<void, Item*>(tbb::filter_mode::serial_in_order,
                                          [&](tbb::flow_control& control) {
                                              {
                                                  const detail::TsanIgnoreReads reading_captures;
                                                  enter(&order.input);
                                              }
                                              Item* item = input(control);
                                              detail::tsan_release(item);
                                              leave(&order.input);
                                              return item;
                                          }) &
                tbb::make_filter<Item*, Item*>(tbb::filter_mode::parallel, parallel_stage(read_and_hash)) &
                tbb::make_filter<Item*, Item*>(tbb::filter_mode::parallel, parallel_stage(scan_file)) &
                tbb::make_filter<Item*, void>(tbb::filter_mode::serial_out_of_order, [&](Item* item) {
                    {
                        const detail::TsanIgnoreReads reading_captures;
                        enter(&order.record);
                        detail::tsan_acquire(item);
                    }
                    record_item(item); // deletes the item
                    leave(&order.record);
                }));
    });
    detail::tsan_acquire(&order.end);
    give_back_arena(arena);
    if (!std::exchange(listed, true) && on_listed) {
        on_listed();
    }

    const std::lock_guard report_lock(m_report_mutex);
    for (const auto& link : links) {
        reports::InventoryRecord line{where.target, where.device, link.path,
                                      link.size,    std::nullopt, OutcomeKind::clean,
                                      "",           {},           link.hardlink_of};
        if (const auto found = linked_results.find(*link.hardlink_of); found != linked_results.end()) {
            line.outcome = found->second.kind;
            line.sha256 = found->second.sha256;
            line.reason = found->second.reason;
            line.signatures = found->second.signatures;
        } else {
            line.outcome = OutcomeKind::skipped;
            line.reason = "hard link to a file that was not scanned";
        }
        m_events.on_file(line);
    }
    return result;
}

} // namespace coldscan::scanner
