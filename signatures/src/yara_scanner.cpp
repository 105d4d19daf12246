// Scanning one file with YARA through a per-worker YR_SCANNER.
//
// How the bytes reach libyara depends on where they are:
//   - in memory: scanned in place;
//   - behind a descriptor: exactly the content's bytes are mmap'd (yr_filemap_map_fd with the content
//     size; the descriptor may hold more) and scanned as one buffer, paged in by the kernel, never copied;
//   - behind a reader without a descriptor, up to k_copy_limit: read into one buffer, exact as above;
//   - larger ones: fed as k_block_size blocks read on demand. libyara then matches strings within each
//     block only (a string crossing a block boundary is missed) while offsets, filesize and uint32(x)
//     still see the whole file. This is libyara's process-memory model; a warning is logged once.
// Matches, limit reasons and read errors are gathered in a YaraScanState on the caller's stack.
#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"
#include "engine_result_builder.hpp"
#include "file_fingerprint.hpp"
#include "yara_rules_impl.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

namespace coldscan::signatures {
namespace {

constexpr std::uint64_t k_copy_limit = 64ULL << 20;
constexpr std::size_t k_block_size = 16U << 20;

using ScannerHandle = CHandle<YR_SCANNER, yr_scanner_destroy>;

struct YaraScanState {
    std::vector<Detection> detections;
    std::string limit_reason;
    bool callback_failed = false;
};

Detection to_detection(const YR_RULE& rule) {
    Detection detection;
    detection.engine = Engine::yara;
    detection.signature = rule.identifier;
    detection.yara_namespace = rule.ns != nullptr ? rule.ns->name : "";
    const YR_RULE* r = &rule; // the libyara macros need a plain pointer
    const char* tag = nullptr;
    yr_rule_tags_foreach(r, tag) {
        detection.tags.emplace_back(tag);
    }
    const YR_META* meta = nullptr;
    yr_rule_metas_foreach(r, meta) {
        std::string value;
        if (meta->type == META_TYPE_INTEGER) {
            value = std::to_string(meta->integer);
        } else if (meta->type == META_TYPE_BOOLEAN) {
            value = meta->integer != 0 ? "true" : "false";
        } else if (meta->string != nullptr) {
            value = meta->string;
        }
        detection.meta.emplace_back(meta->identifier, std::move(value));
    }
    return detection;
}

void add_limit_reason(YaraScanState& state, const std::string& reason) {
    if (state.limit_reason.find(reason) != std::string::npos) {
        return;
    }
    if (!state.limit_reason.empty()) {
        state.limit_reason += "; ";
    }
    state.limit_reason += reason;
}

int on_scan_message(YR_SCAN_CONTEXT* context, int message, void* message_data, void* user_data) noexcept {
    auto* state = static_cast<YaraScanState*>(user_data);
    try {
        if (message == CALLBACK_MSG_RULE_MATCHING) {
            state->detections.push_back(to_detection(*static_cast<const YR_RULE*>(message_data)));
        } else if (message == CALLBACK_MSG_TOO_MANY_MATCHES) {
            // libyara stops recording this string's matches and goes on with the rest.
            const auto* string = static_cast<const YR_STRING*>(message_data);
            const YR_RULE& rule = context->rules->rules_table[string->rule_idx];
            add_limit_reason(*state, std::string("YARA: too many matches for string ") + string->identifier +
                                         " in rule " + rule.identifier);
        } else if (message == CALLBACK_MSG_CONSOLE_LOG) {
            spdlog::debug("YARA console: {}", printable(static_cast<const char*>(message_data)));
        }
        return CALLBACK_CONTINUE;
    } catch (...) {
        state->callback_failed = true;
        return CALLBACK_ERROR;
    }
}

// A YR_MEMORY_BLOCK_ITERATOR over a Content read in k_block_size blocks. libyara walks it once to match
// strings and again for each uint32(x)-style read while evaluating conditions, so first() restarts and
// fetch_data() re-reads a block that is not the one in the buffer.
struct BlockReader {
    const Content* content = nullptr;
    std::vector<std::byte> buffer;
    std::uint64_t buffered_base = UINT64_MAX;
    YR_MEMORY_BLOCK block{};
    std::string read_error;

    static YR_MEMORY_BLOCK* at(YR_MEMORY_BLOCK_ITERATOR* iterator, std::uint64_t base) noexcept {
        auto* self = static_cast<BlockReader*>(iterator->context);
        iterator->last_error = ERROR_SUCCESS;
        if (base >= self->content->size()) {
            return nullptr;
        }
        self->block.base = base;
        self->block.size =
            static_cast<size_t>(std::min<std::uint64_t>(k_block_size, self->content->size() - base));
        self->block.context = self;
        self->block.fetch_data = &BlockReader::fetch;
        return &self->block;
    }
    static YR_MEMORY_BLOCK* first(YR_MEMORY_BLOCK_ITERATOR* iterator) noexcept { return at(iterator, 0); }
    static YR_MEMORY_BLOCK* next(YR_MEMORY_BLOCK_ITERATOR* iterator) noexcept {
        const auto* self = static_cast<BlockReader*>(iterator->context);
        return at(iterator, self->block.base + k_block_size);
    }
    static uint64_t file_size(YR_MEMORY_BLOCK_ITERATOR* iterator) noexcept {
        return static_cast<BlockReader*>(iterator->context)->content->size();
    }
    // Returns the block's bytes, or nullptr after a read error (libyara then skips the block; the error is
    // kept and turns the result into an error).
    static const uint8_t* fetch(YR_MEMORY_BLOCK* block) noexcept {
        auto* self = static_cast<BlockReader*>(block->context);
        try {
            if (self->buffered_base != block->base) {
                self->buffered_base = UINT64_MAX;
                self->buffer.resize(k_block_size);
                std::size_t done = 0;
                while (done < block->size) {
                    auto n = self->content->read_at(
                        block->base + done, std::span(self->buffer).subspan(done, block->size - done));
                    if (!n || *n == 0) {
                        if (self->read_error.empty()) {
                            self->read_error = n ? "file ended early" : n.error().message;
                        }
                        return nullptr;
                    }
                    done += *n;
                }
                self->buffered_base = block->base;
            }
            return reinterpret_cast<const uint8_t*>(self->buffer.data());
        } catch (...) {
            if (self->read_error.empty()) {
                self->read_error = "out of memory";
            }
            return nullptr;
        }
    }
};

Expected<std::vector<std::byte>> read_all(const Content& content) {
    std::vector<std::byte> bytes(static_cast<std::size_t>(content.size()));
    std::size_t done = 0;
    while (done < bytes.size()) {
        auto n = content.read_at(done, std::span(bytes).subspan(done));
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n == 0) {
            return make_error(Errc::io, "file ended early");
        }
        done += *n;
    }
    return bytes;
}

const uint8_t* as_bytes(const std::byte* data) {
    return reinterpret_cast<const uint8_t*>(data);
}

// Runs the scan; returns libyara's code, or an error message for failures before libyara is reached.
struct ScanOutcome {
    int code = ERROR_SUCCESS;
    std::string io_error;
};

ScanOutcome scan_blocks(YR_SCANNER* scanner, const Content& content) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
        spdlog::warn("YARA scans files over {} without a descriptor in {} blocks; strings across block "
                     "boundaries are not matched",
                     format_bytes(k_copy_limit), format_bytes(k_block_size));
    }
    BlockReader reader;
    reader.content = &content;
    YR_MEMORY_BLOCK_ITERATOR iterator{};
    iterator.context = &reader;
    iterator.first = &BlockReader::first;
    iterator.next = &BlockReader::next;
    iterator.file_size = &BlockReader::file_size;
    iterator.last_error = ERROR_SUCCESS;
    ScanOutcome outcome;
    outcome.code = yr_scanner_scan_mem_blocks(scanner, &iterator);
    outcome.io_error = std::move(reader.read_error);
    return outcome;
}

ScanOutcome scan_without_descriptor(YR_SCANNER* scanner, const Content& content) {
    if (content.size() <= k_copy_limit) {
        auto bytes = read_all(content);
        if (!bytes) {
            return {ERROR_SUCCESS, bytes.error().message};
        }
        return {yr_scanner_scan_mem(scanner, as_bytes(bytes->data()), bytes->size()), {}};
    }
    return scan_blocks(scanner, content);
}

ScanOutcome scan_descriptor(YR_SCANNER* scanner, const Content& content) {
    YR_MAPPED_FILE mapped{};
    if (yr_filemap_map_fd(content.fd(), 0, static_cast<size_t>(content.size()), &mapped) != ERROR_SUCCESS) {
        return scan_without_descriptor(scanner, content); // not mappable (a pipe, a device): read it
    }
    ScanOutcome outcome;
    if (mapped.size != content.size()) {
        outcome.io_error = "file ended early (" + std::to_string(mapped.size) + " of " +
                           std::to_string(content.size()) + " bytes)";
    } else {
        outcome.code = yr_scanner_scan_mem(scanner, mapped.data, mapped.size);
    }
    yr_filemap_unmap_fd(&mapped);
    return outcome;
}

ScanOutcome scan_content(YR_SCANNER* scanner, const Content& content) {
    if (const auto memory = content.memory()) {
        return {yr_scanner_scan_mem(scanner, as_bytes(memory->data()), memory->size()), {}};
    }
    if (content.size() == 0) {
        return {yr_scanner_scan_mem(scanner, nullptr, 0), {}};
    }
    if (content.fd() >= 0) {
        return scan_descriptor(scanner, content);
    }
    return scan_without_descriptor(scanner, content);
}

void set_externals(YR_SCANNER* scanner, std::string_view path) {
    const std::filesystem::path guest_path{std::string(path)};
    const std::string values[] = {
        guest_path.filename().string(),
        std::string(path),
        detail::ascii_lower(guest_path.extension().string()).substr(guest_path.has_extension() ? 1 : 0),
        "",
        "",
    };
    static_assert(std::size(values) == std::size(detail::k_yara_externals));
    for (std::size_t i = 0; i < std::size(values); ++i) {
        // Rules loaded from a compiled file may not declare a variable (ERROR_INVALID_ARGUMENT) or declare it
        // with another type; those are skipped.
        (void)yr_scanner_define_string_variable(scanner, detail::k_yara_externals[i], values[i].c_str());
    }
}

} // namespace

struct YaraScanner::Impl {
    std::shared_ptr<const YaraRules::Impl> rules; // keeps the compiled rules alive while the scanner lives
    ScannerHandle scanner;
    std::chrono::seconds timeout{0};
};

Expected<YaraScanner> YaraScanner::create(const YaraRules& rules, std::chrono::seconds timeout) {
    YR_SCANNER* raw = nullptr;
    if (const int rc = yr_scanner_create(rules.m_impl->rules.get(), &raw); rc != ERROR_SUCCESS) {
        return make_error(Errc::engine, "cannot create a YARA scanner: error code " + std::to_string(rc));
    }
    auto impl = std::make_unique<Impl>();
    impl->rules = rules.m_impl;
    impl->scanner.reset(raw);
    impl->timeout = timeout;
    yr_scanner_set_timeout(raw, static_cast<int>(std::clamp<std::int64_t>(timeout.count(), 0, INT_MAX)));
    yr_scanner_set_flags(raw, SCAN_FLAGS_REPORT_RULES_MATCHING);
    return YaraScanner(std::move(impl));
}

YaraScanner::YaraScanner(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
YaraScanner::YaraScanner(YaraScanner&&) noexcept = default;
YaraScanner& YaraScanner::operator=(YaraScanner&&) noexcept = default;
YaraScanner::~YaraScanner() = default;

EngineResult YaraScanner::scan(const Content& content, std::string_view path) {
    YR_SCANNER* scanner = m_impl->scanner.get();
    set_externals(scanner, path);
    YaraScanState state;
    yr_scanner_set_callback(scanner, &on_scan_message, &state);
    const ScanOutcome outcome = scan_content(scanner, content);
    yr_scanner_set_callback(scanner, &on_scan_message, nullptr);

    EngineResult result;
    result.detections = std::move(state.detections);
    std::string limit_reason = std::move(state.limit_reason);
    std::string error_reason;
    if (state.callback_failed) {
        error_reason = "YARA: could not record a match (out of memory)";
    } else if (!outcome.io_error.empty()) {
        error_reason = "YARA: " + outcome.io_error;
    } else if (outcome.code == ERROR_SCAN_TIMEOUT) {
        limit_reason = "YARA: scan timed out after " + std::to_string(m_impl->timeout.count()) + "s" +
                       (limit_reason.empty() ? "" : "; " + limit_reason);
    } else if (outcome.code != ERROR_SUCCESS) {
        error_reason = "YARA: error code " + std::to_string(outcome.code);
    }

    auto finished =
        detail::finish_result(std::move(result.detections), std::move(error_reason), std::move(limit_reason));
    finished.timed_out = outcome.code == ERROR_SCAN_TIMEOUT;
    return finished;
}

} // namespace coldscan::signatures
