#include "console_events.hpp"

#include "coldscan/common/text.hpp"
#include "coldscan/reports/text_report.hpp"

#include <cstdio>

namespace coldscan::cli {

ConsoleEvents::ConsoleEvents(bool print_issues, std::optional<reports::InventoryWriter> inventory)
    : m_print_issues(print_issues), m_inventory(std::move(inventory)) {}

ConsoleEvents::~ConsoleEvents() {
    stop_progress();
}

void ConsoleEvents::clear_progress_locked() {
    if (m_progress_shown) {
        std::fputs("\r\033[K", stderr);
        m_progress_shown = false;
    }
}

void ConsoleEvents::print_line(std::FILE* stream, const std::string& line) {
    std::lock_guard lock(m_mutex);
    clear_progress_locked();
    std::fputs(line.c_str(), stream);
    std::fputc('\n', stream);
    std::fflush(stream);
}

void ConsoleEvents::on_detection(reports::TargetKind kind, const reports::DetectionRecord& record) {
    print_line(stdout, reports::detection_line(kind, record));
}

void ConsoleEvents::on_issue(reports::TargetKind kind, const reports::IssueRecord& record) {
    if (record.outcome == reports::k_target_failed) {
        // A target that could not be scanned at all is bad input or a broken image: say it on stderr, once.
        print_line(stderr, "coldscan: error: " + reports::display_location(kind, record.target, "", "") +
                               ": " + printable(record.reason));
    } else if (m_print_issues) {
        print_line(stdout, reports::issue_line(kind, record));
    }
}

void ConsoleEvents::on_file(const reports::InventoryRecord& record) {
    if (m_inventory) {
        m_inventory->write(record);
    }
}

void ConsoleEvents::on_phase(std::string_view message) {
    if (!m_progress_running.load()) {
        return; // without a progress line, phases are logged at info level by the caller
    }
    std::lock_guard lock(m_mutex);
    clear_progress_locked();
    std::fprintf(stderr, "%.*s...", static_cast<int>(message.size()), message.data());
    m_progress_shown = true;
}

void ConsoleEvents::draw_progress(const scanner::Progress& progress,
                                  std::chrono::steady_clock::time_point start) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::uint64_t bytes = progress.bytes_done.load();
    const double rate = elapsed > 0 ? static_cast<double>(bytes) / elapsed : 0.0;
    std::string line = "[" + std::to_string(progress.target_index.load()) + "/" +
                       std::to_string(progress.target_count.load()) + "] " + progress.phase() + "  " +
                       std::to_string(progress.files_done.load()) + " files, " + format_bytes(bytes);
    char rate_text[48];
    std::snprintf(rate_text, sizeof rate_text, ", %.1f MB/s", rate / 1e6);
    line += rate_text;
    const std::uint64_t expected = progress.source_expected_bytes.load();
    const std::uint64_t done_here = bytes - std::min(bytes, progress.source_bytes_base.load());
    if (expected > done_here && rate > 0) {
        line +=
            ", ETA " +
            format_duration(std::chrono::duration<double>(static_cast<double>(expected - done_here) / rate));
    }
    if (line.size() > 160) {
        line.resize(160);
    }
    std::lock_guard lock(m_mutex);
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    m_progress_shown = true;
}

void ConsoleEvents::start_progress(const scanner::Progress& progress) {
    m_progress_running = true;
    m_progress_thread = std::thread([this, &progress] {
        const auto start = std::chrono::steady_clock::now();
        while (m_progress_running.load()) {
            draw_progress(progress, start);
            for (int i = 0; i < 5 && m_progress_running.load(); ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    });
}

void ConsoleEvents::stop_progress() {
    if (!m_progress_running.exchange(false)) {
        return;
    }
    if (m_progress_thread.joinable()) {
        m_progress_thread.join();
    }
    std::lock_guard lock(m_mutex);
    clear_progress_locked();
}

Expected<void> ConsoleEvents::finish() {
    stop_progress();
    if (m_inventory) {
        auto closed = m_inventory->close();
        m_inventory.reset();
        return closed;
    }
    return {};
}

} // namespace coldscan::cli
