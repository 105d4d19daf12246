// What a scan tells its caller as it goes (the CLI prints lines and progress; the service will store them).
#pragma once

#include "coldscan/reports/report.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace coldscan::scanner {

// Thread rule: called from one thread at a time (the pipeline's serial record stage or the run's own thread).
class ScanEvents {
public:
    virtual ~ScanEvents() = default;
    virtual void on_detection(reports::TargetKind /*kind*/, const reports::DetectionRecord& /*record*/) {}
    virtual void on_issue(reports::TargetKind /*kind*/, const reports::IssueRecord& /*record*/) {}
    virtual void on_file(const reports::InventoryRecord& /*record*/) {}
    // A slow step starts ("starting the appliance for vm1.qcow2").
    virtual void on_phase(std::string_view /*message*/) {}
};

// Live counters for a progress line. Thread rule: shared; written by the scan, read by any thread.
struct Progress {
    std::atomic<std::uint64_t> files_done{0};
    std::atomic<std::uint64_t> bytes_done{0};
    // Of the source being scanned now (0 = unknown), and what was done before it started.
    std::atomic<std::uint64_t> source_expected_bytes{0};
    std::atomic<std::uint64_t> source_bytes_base{0};
    std::atomic<std::uint32_t> target_index{0};
    std::atomic<std::uint32_t> target_count{0};

    void set_phase(std::string_view phase) {
        std::lock_guard lock(m_mutex);
        m_phase = phase;
    }
    [[nodiscard]] std::string phase() const {
        std::lock_guard lock(m_mutex);
        return m_phase;
    }

private:
    mutable std::mutex m_mutex;
    std::string m_phase;
};

} // namespace coldscan::scanner
