// The versioned JSON report (docs/report-schema.md) and the per-file inventory (JSON lines).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/reports/report.hpp"

#include <cstdio>
#include <filesystem>
#include <string>

namespace coldscan::reports {

[[nodiscard]] std::string to_json(const Report& report);
// The report's "signatures" section alone (GET /v1/signatures shows the loaded set the same way).
[[nodiscard]] std::string signatures_to_json(const SignatureReport& signatures);
// Writes atomically (a temporary file in the same folder, then rename). Error: io.
[[nodiscard]] Expected<void> write_json_file(const Report& report, const std::filesystem::path& path);
[[nodiscard]] std::string inventory_line(const InventoryRecord& record);

// Appends inventory lines to a file as they come. Thread rule: one writer, used from one thread at a time.
class InventoryWriter {
public:
    // Creates or truncates the file. Error: io.
    static Expected<InventoryWriter> open(const std::filesystem::path& path);
    InventoryWriter(InventoryWriter&& other) noexcept;
    InventoryWriter& operator=(InventoryWriter&&) = delete;
    InventoryWriter(const InventoryWriter&) = delete;
    InventoryWriter& operator=(const InventoryWriter&) = delete;
    ~InventoryWriter();

    void write(const InventoryRecord& record);
    // Flushes and fsyncs; error if any earlier write failed. Error: io.
    [[nodiscard]] Expected<void> close();

private:
    InventoryWriter(std::FILE* file, std::filesystem::path path) : m_file(file), m_path(std::move(path)) {}
    std::FILE* m_file = nullptr;
    std::filesystem::path m_path;
    bool m_failed = false;
};

// Fails early (before a long scan) when an output file could not be written later. Error: invalid_argument.
[[nodiscard]] Expected<void> check_writable(const std::filesystem::path& path);

} // namespace coldscan::reports
