// Prints a scan as it goes: detection and problem lines on stdout, a live progress line on a terminal's
// stderr, inventory lines to the --inventory file.
#pragma once

#include "coldscan/reports/json_report.hpp"
#include "coldscan/scanner/scan_events.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

namespace coldscan::cli {

// Thread rule: the ScanEvents methods come from one thread at a time; the progress thread shares m_mutex.
class ConsoleEvents final : public scanner::ScanEvents {
public:
    ConsoleEvents(bool print_issues, std::optional<reports::InventoryWriter> inventory);
    ~ConsoleEvents() override;
    ConsoleEvents(const ConsoleEvents&) = delete;
    ConsoleEvents& operator=(const ConsoleEvents&) = delete;

    void on_detection(reports::TargetKind kind, const reports::DetectionRecord& record) override;
    void on_issue(reports::TargetKind kind, const reports::IssueRecord& record) override;
    void on_file(const reports::InventoryRecord& record) override;
    void on_phase(std::string_view message) override;

    // Redraws a progress line on stderr every quarter second until stop_progress().
    void start_progress(const scanner::Progress& progress);
    void stop_progress();
    // Flushes and closes the inventory. Error: io.
    [[nodiscard]] Expected<void> finish();

private:
    void print_line(std::FILE* stream, const std::string& line);
    void draw_progress(const scanner::Progress& progress, std::chrono::steady_clock::time_point start);
    void clear_progress_locked();

    bool m_print_issues;
    std::optional<reports::InventoryWriter> m_inventory;
    std::mutex m_mutex;
    bool m_progress_shown = false;
    std::atomic<bool> m_progress_running{false};
    std::thread m_progress_thread;
};

} // namespace coldscan::cli
