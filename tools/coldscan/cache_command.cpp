#include "cache_command.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/scanner/kv_store.hpp"
#include "coldscan/scanner/set_lineage.hpp"
#include "coldscan/scanner/verdict_cache.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace coldscan::cli {

struct CacheCommandOptions {
    std::string cache_dir;
    std::string older_than;
    CLI::App* stats = nullptr;
    CLI::App* gc = nullptr;
    CLI::App* verify = nullptr;
};

std::optional<std::filesystem::path> default_cache_dir() {
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
        return std::filesystem::path(xdg) / "coldscan";
    }
    if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
        return std::filesystem::path(home) / ".cache" / "coldscan";
    }
    return std::nullopt;
}

std::string utc_minutes(std::optional<std::int64_t> seconds) {
    if (!seconds) {
        return "-";
    }
    const auto time = static_cast<std::time_t>(*seconds);
    std::tm tm{};
    ::gmtime_r(&time, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
    return text;
}

std::shared_ptr<CacheCommandOptions> add_cache_command(CLI::App& app) {
    auto options = std::make_shared<CacheCommandOptions>();
    auto* cache = app.add_subcommand("cache", "Inspect and maintain the verdict cache");
    cache->require_subcommand(1);
    cache->add_option("--cache", options->cache_dir,
                      "Cache folder (default: $XDG_CACHE_HOME/coldscan or ~/.cache/coldscan)");
    options->stats = cache->add_subcommand("stats", "Records per level, their size and age");
    options->gc = cache->add_subcommand("gc", "Remove records not used for a while");
    options->gc->add_option("--older-than", options->older_than, "Age, e.g. 30d, 12h, 2w")->required();
    options->verify = cache->add_subcommand("verify", "Check every block's checksum and every record");
    return options;
}

namespace {

std::uint64_t folder_bytes(const std::filesystem::path& dir) {
    std::uint64_t total = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        std::error_code size_ec;
        if (entry.is_regular_file(size_ec)) {
            total += entry.file_size(size_ec);
        }
    }
    return total;
}

void print_space(const char* name, const scanner::KeySpaceStats& s) {
    std::printf("%-22s %10llu records, %s, last used %s .. %s%s\n", name,
                static_cast<unsigned long long>(s.records), format_bytes(s.bytes).c_str(),
                utc_minutes(s.oldest_use).c_str(), utc_minutes(s.newest_use).c_str(),
                s.undecodable != 0 ? (", " + std::to_string(s.undecodable) + " undecodable").c_str() : "");
}

} // namespace

int run_cache(const CacheCommandOptions& o, const CLI::App& /*app*/) {
    std::filesystem::path dir;
    if (!o.cache_dir.empty()) {
        dir = o.cache_dir;
    } else if (auto found = default_cache_dir()) {
        dir = *found;
    } else {
        spdlog::error("no cache folder: set --cache DIR (HOME and XDG_CACHE_HOME are unset)");
        return 2;
    }
    std::error_code ec;
    if (!std::filesystem::exists(dir / "CURRENT", ec)) {
        spdlog::error("there is no coldscan cache in {}", dir.string());
        return 2;
    }
    auto store = scanner::open_rocksdb_store(dir);
    if (!store) {
        spdlog::error("{}", store.error().message);
        return 2;
    }
    if (o.stats->parsed()) {
        auto stats = scanner::cache_stats(**store);
        if (!stats) {
            spdlog::error("{}", stats.error().message);
            return 2;
        }
        std::printf("Cache:                 %s (%s on disk)\n", dir.c_str(),
                    format_bytes(folder_bytes(dir)).c_str());
        print_space("Level 1 (identities):", stats->identities);
        print_space("Level 2 (verdicts):", stats->verdicts);
        print_space("Places (retro-hunt):", stats->places);
        auto lineage = scanner::lineage_stats(**store);
        if (!lineage) {
            spdlog::error("{}", lineage.error().message);
            return 2;
        }
        std::printf("%-22s %10llu sets (%llu line buckets), %s, last used %s .. %s%s\n",
                    "Signature sets:", static_cast<unsigned long long>(lineage->sets),
                    static_cast<unsigned long long>(lineage->buckets), format_bytes(lineage->bytes).c_str(),
                    utc_minutes(lineage->oldest_use).c_str(), utc_minutes(lineage->newest_use).c_str(),
                    lineage->undecodable != 0
                        ? (", " + std::to_string(lineage->undecodable) + " undecodable").c_str()
                        : "");
        return 0;
    }
    if (o.gc->parsed()) {
        const auto age = parse_duration(o.older_than);
        if (!age) {
            spdlog::error("--older-than: '{}' is not a duration (examples: 30d, 12h, 2w)", o.older_than);
            return 2;
        }
        const std::uint64_t before = folder_bytes(dir);
        auto removed = scanner::collect_garbage(**store, *age);
        if (!removed) {
            spdlog::error("{}", removed.error().message);
            return 2;
        }
        store->reset(); // closes it, so the folder size below is final
        std::printf("Removed %llu records not used for %s; %s -> %s on disk\n",
                    static_cast<unsigned long long>(*removed), o.older_than.c_str(),
                    format_bytes(before).c_str(), format_bytes(folder_bytes(dir)).c_str());
        return 0;
    }
    auto check = scanner::verify_cache(**store);
    if (!check) {
        spdlog::error("{}", check.error().message);
        return 2;
    }
    std::printf("Records checked: %llu\n", static_cast<unsigned long long>(check->records));
    if (check->checksum_error) {
        std::printf("Damaged: %s\n", check->checksum_error->c_str());
    }
    if (check->undecodable != 0) {
        std::printf("Undecodable records: %llu (they count as misses; `coldscan cache gc` removes them)\n",
                    static_cast<unsigned long long>(check->undecodable));
    }
    if (check->checksum_error || check->undecodable != 0) {
        std::printf("Result: damaged (a damaged cache never gives a verdict; delete %s to start afresh)\n",
                    dir.c_str());
        return 2;
    }
    std::printf("Result: ok\n");
    return 0;
}

} // namespace coldscan::cli
