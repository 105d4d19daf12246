#include "retro_hunt_command.hpp"

#include "cache_command.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/scanner/kv_store.hpp"
#include "coldscan/scanner/retro_hunt.hpp"
#include "coldscan/signatures/signature_set.hpp"

#include <cstdio>

namespace coldscan::cli {

struct RetroHuntOptions {
    std::string cache_dir;
    std::string clamav_db;
    std::vector<std::string> yara_rules;
    bool json = false;
};

std::shared_ptr<RetroHuntOptions> add_retro_hunt_command(CLI::App& app) {
    auto options = std::make_shared<RetroHuntOptions>();
    auto* hunt = app.add_subcommand(
        "retro-hunt",
        "Name every cached content the current signatures newly detect by hash, and where it was "
        "seen, without reading a disk (exit 1 when one is found)");
    hunt->add_option("--cache", options->cache_dir,
                     "Verdict cache folder (default: $XDG_CACHE_HOME/coldscan or ~/.cache/coldscan)");
    hunt->add_option("--clamav-db", options->clamav_db,
                     "ClamAV database file or folder (default: /var/lib/clamav when it holds databases)");
    hunt->add_option("--yara-rules", options->yara_rules, "YARA rules file or folder (repeatable)")
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    hunt->add_flag("--json", options->json, "Print the result as JSON");
    return options;
}

namespace {

void print_text(const scanner::RetroHunt& hunt) {
    std::printf("Signature set:  %.16s, compared with %zu earlier set(s): %llu hash signature(s) added\n",
                hunt.detection_set.c_str(), hunt.from_sets.size(),
                static_cast<unsigned long long>(hunt.hash_lines_added));
    std::printf("Cached:         %llu contents (%llu verdicts): %llu verdicted with this set already, %llu "
                "compared, %llu the next scan must check (no digest can answer for them)\n",
                static_cast<unsigned long long>(hunt.contents),
                static_cast<unsigned long long>(hunt.verdicts), static_cast<unsigned long long>(hunt.current),
                static_cast<unsigned long long>(hunt.compared),
                static_cast<unsigned long long>(hunt.unproven));
    std::size_t places = 0;
    for (const auto& hit : hunt.hits) {
        std::string names;
        for (const auto& name : hit.signatures) {
            names += (names.empty() ? "" : ", ") + name;
        }
        std::printf("FOUND %s  sha256 %s, %zu place(s)\n", names.c_str(), to_hex(hit.content).c_str(),
                    hit.places.size());
        for (const auto& place : hit.places) {
            std::printf("  %s  %s  %s  (seen %s)\n", place.target.c_str(), place.device.c_str(),
                        place.path.c_str(), utc_minutes(place.seen).c_str());
        }
        places += hit.places.size();
    }
    std::printf("Result: %zu content(s) newly detected, in %zu place(s)\n", hunt.hits.size(), places);
}

} // namespace

int run_retro_hunt(const RetroHuntOptions& o) {
    const auto dir =
        o.cache_dir.empty() ? default_cache_dir() : std::optional(std::filesystem::path(o.cache_dir));
    std::error_code ec;
    if (!dir || !std::filesystem::exists(*dir / "CURRENT", ec)) {
        spdlog::error("there is no coldscan cache in {} (set --cache DIR)",
                      dir ? dir->string() : "$HOME/.cache");
        return 2;
    }
    signatures::SignatureOptions sig_options;
    if (!o.clamav_db.empty()) {
        sig_options.clamav_db = o.clamav_db;
    }
    sig_options.yara_rules.assign(o.yara_rules.begin(), o.yara_rules.end());
    sig_options.memo_dir = *dir / signatures::k_memo_folder;
    auto signatures = signatures::SignatureSet::load(sig_options, signatures::LoadMode::catalogue);
    if (!signatures) {
        spdlog::error("{}", signatures.error().message);
        return 2;
    }
    auto store = scanner::open_rocksdb_store(*dir);
    if (!store) {
        spdlog::error("{}", store.error().message);
        return 2;
    }
    auto hunt = scanner::retro_hunt(**store, *signatures);
    if (!hunt) {
        spdlog::error("{}", hunt.error().message);
        return 2;
    }
    if (o.json) {
        std::printf("%s\n", scanner::retro_hunt_json(*hunt).c_str());
    } else {
        print_text(*hunt);
    }
    return hunt->hits.empty() ? 0 : 1;
}

} // namespace coldscan::cli
