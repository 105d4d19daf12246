// coldscan-engines-only: ClamAV + YARA alone on files already held in memory, on all cores. The ceiling any
// disk path can reach: bench/direct-bench.sh prints coldscan's throughput as a share of it.
//
// usage: coldscan-engines-only --clamav-db DB [--yara-rules PATH]... [--threads N] FOLDER
// Prints one JSON object: files, bytes, seconds (scan only, after loading and reading), MB/s, infected.
#include "coldscan/common/content.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/scanner/file_scanner.hpp"
#include "coldscan/signatures/engine_libraries.hpp"
#include "coldscan/signatures/signature_set.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <thread>

namespace fs = std::filesystem;
using namespace coldscan;

namespace {

struct File {
    std::string path;
    Content content;
};

std::vector<File> read_tree(const fs::path& root) {
    std::vector<File> files;
    for (const auto& entry :
         fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied)) {
        if (!entry.is_regular_file() || entry.is_symlink()) {
            continue;
        }
        std::ifstream in(entry.path(), std::ios::binary);
        std::vector<std::byte> bytes(entry.file_size());
        in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        files.push_back(File{entry.path().string(), Content::from_memory(std::move(bytes))});
    }
    return files;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"ClamAV + YARA alone on files held in memory"};
    std::string clamav_db;
    std::vector<std::string> yara_rules;
    unsigned threads = std::max(1U, std::thread::hardware_concurrency());
    std::string folder;
    app.add_option("--clamav-db", clamav_db, "ClamAV database folder")->required();
    app.add_option("--yara-rules", yara_rules, "YARA rules (repeatable)");
    app.add_option("--threads", threads, "Scan threads (default: all cores)");
    app.add_option("FOLDER", folder, "Files to scan")->required();
    CLI11_PARSE(app, argc, argv);
    setup_logging(LogLevel::quiet);

    auto libraries = signatures::EngineLibraries::initialize();
    if (!libraries) {
        std::cerr << libraries.error().message << "\n";
        return 2;
    }
    signatures::SignatureOptions options;
    options.clamav_db = clamav_db;
    for (const auto& rules : yara_rules) {
        options.yara_rules.emplace_back(rules);
    }
    auto set = signatures::SignatureSet::load(options);
    if (!set) {
        std::cerr << set.error().message << "\n";
        return 2;
    }
    const std::vector<File> files = read_tree(folder);
    std::uint64_t bytes = 0;
    std::vector<std::size_t> order(files.size());
    for (std::size_t i = 0; i < files.size(); ++i) {
        bytes += files[i].content.size();
        order[i] = i;
    }
    // Largest first, as coldscan orders its reads: no long file left for the tail.
    std::ranges::sort(order, [&files](std::size_t a, std::size_t b) {
        return files[a].content.size() > files[b].content.size();
    });

    std::atomic<std::uint64_t> infected{0};
    std::atomic<std::uint64_t> errors{0};
    oneapi::tbb::enumerable_thread_specific<std::optional<scanner::FileScanner>> scanners;
    oneapi::tbb::task_arena arena(static_cast<int>(threads));
    const auto start = std::chrono::steady_clock::now();
    arena.execute([&] {
        oneapi::tbb::parallel_for(
            oneapi::tbb::blocked_range<std::size_t>(0, files.size(), 1),
            [&](const oneapi::tbb::blocked_range<std::size_t>& range) {
                auto& scanner = scanners.local();
                if (!scanner) {
                    scanner.emplace(scanner::FileScanner::create(*set).value());
                }
                for (std::size_t k = range.begin(); k != range.end(); ++k) {
                    const File& file = files[order[k]];
                    const Outcome outcome = scanner->scan(file.content, file.path);
                    if (outcome.kind == OutcomeKind::infected) {
                        infected.fetch_add(1);
                    } else if (outcome.kind != OutcomeKind::clean) {
                        errors.fetch_add(1);
                    }
                }
            },
            oneapi::tbb::simple_partitioner{});
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "{\"files\": " << files.size() << ", \"bytes\": " << bytes << ", \"seconds\": " << seconds
              << ", \"mb_per_s\": " << (seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0)
              << ", \"infected\": " << infected.load() << ", \"not_clean_or_infected\": " << errors.load()
              << ", \"threads\": " << threads << "}\n";
    return 0;
}
