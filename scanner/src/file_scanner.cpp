#include "coldscan/scanner/file_scanner.hpp"

#include <array>

namespace coldscan::scanner {

using signatures::EngineResult;

Expected<FileScanner> FileScanner::create(const signatures::SignatureSet& signatures) {
    if (auto ready = signatures.ready(); !ready) {
        return std::unexpected(ready.error());
    }
    if (const auto* sandbox = signatures.sandbox()) {
        auto worker = sandbox->spawn_worker();
        if (!worker) {
            return std::unexpected(worker.error());
        }
        return FileScanner(sandbox, std::move(*worker));
    }
    std::optional<signatures::YaraScanner> yara;
    if (const auto* rules = signatures.yara()) {
        auto scanner = signatures::YaraScanner::create(*rules, signatures.limits().yara_timeout);
        if (!scanner) {
            return std::unexpected(scanner.error());
        }
        yara.emplace(std::move(*scanner));
    }
    return FileScanner(signatures.clamav(), std::move(yara));
}

Outcome FileScanner::scan_in_worker(const Content& content, std::string_view path) {
    std::string failure;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!m_worker || m_worker->retired()) {
            auto worker = m_sandbox->spawn_worker();
            if (!worker) {
                return Outcome{OutcomeKind::error, worker.error().message, {}, /*transient=*/true};
            }
            m_worker.emplace(std::move(*worker));
        }
        auto results = m_worker->scan(content, path);
        if (results) {
            return combine_results(*results);
        }
        failure = results.error().message;
        if (results.error().code == Errc::timeout) {
            break; // a hang would only hang again, twice as long
        }
    }
    return Outcome{OutcomeKind::error, failure, {}, /*transient=*/true};
}

Outcome FileScanner::scan(const Content& content, std::string_view path) {
    if (m_sandbox != nullptr) {
        return scan_in_worker(content, path);
    }
    std::array<EngineResult, 2> results;
    std::size_t count = 0;
    if (m_clamav != nullptr) {
        results[count++] = m_clamav->scan(content, path);
    }
    if (m_yara) {
        results[count++] = m_yara->scan(content, path);
    }
    return combine_results(std::span<const EngineResult>(results.data(), count));
}

Outcome combine_results(std::span<const EngineResult> results) {
    Outcome outcome;
    std::string errors;
    std::string limits;
    auto append = [](std::string& to, const std::string& reason) {
        if (!reason.empty()) {
            to += to.empty() ? "" : "; ";
            to += reason;
        }
    };
    for (const auto& result : results) {
        outcome.detections.insert(outcome.detections.end(), result.detections.begin(),
                                  result.detections.end());
        if (result.layers.complete) {
            outcome.layers = result.layers; // ClamAV's: YARA records none
        }
        outcome.transient =
            outcome.transient || result.timed_out || result.status == EngineResult::Status::error;
        if (result.status == EngineResult::Status::error) {
            append(errors, result.reason.empty() ? std::string("engine error") : result.reason);
        } else if (result.status == EngineResult::Status::limit_exceeded) {
            append(limits, result.reason.empty() ? std::string("scan limit reached") : result.reason);
        } else {
            append(limits, result.status == EngineResult::Status::detected ? result.reason : std::string());
        }
    }
    if (!outcome.detections.empty()) {
        outcome.kind = OutcomeKind::infected;
        outcome.reason = errors.empty() ? limits : errors;
    } else if (!errors.empty()) {
        outcome.kind = OutcomeKind::error;
        outcome.reason = errors;
    } else if (!limits.empty()) {
        outcome.kind = OutcomeKind::limit_exceeded;
        outcome.reason = limits;
    } else if (results.empty()) {
        outcome.kind = OutcomeKind::error;
        outcome.reason = "no engine scanned the file";
    } else {
        outcome.kind = OutcomeKind::clean;
    }
    return outcome;
}

} // namespace coldscan::scanner
