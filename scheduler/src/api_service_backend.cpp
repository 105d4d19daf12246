// ApiServer over a real ScanService. Its own file, so that api_server.cpp (and the unit tests that serve a
// fake backend) do not pull in the service and its engines.
#include "coldscan/scheduler/api_server.hpp"

namespace coldscan::scheduler {
namespace {

class ScanServiceBackend final : public ApiBackend {
public:
    explicit ScanServiceBackend(ScanService& service) : m_service(service) {}

    Expected<std::vector<SubmittedJob>> submit(const std::vector<ScanRequest>& requests) override {
        return m_service.submit(requests);
    }
    Expected<JobView> job(std::string_view id) const override { return m_service.job(id); }
    Expected<std::vector<JobView>> jobs(std::optional<JobStatus> status) const override {
        return m_service.jobs(status);
    }
    Expected<JobView> cancel(std::string_view id) override { return m_service.cancel(id); }
    Expected<std::string> report(std::string_view id) const override { return m_service.report(id); }
    std::vector<HostView> hosts() const override { return m_service.hosts(); }
    std::vector<DatastoreView> datastores() const override { return m_service.datastores(); }
    Expected<std::vector<NodeView>> nodes() const override { return m_service.nodes(); }
    Expected<FindingPage> findings(const FindingQuery& query) const override {
        return m_service.findings(query);
    }
    Expected<FindingStats> finding_stats(const FindingQuery& query) const override {
        return m_service.finding_stats(query);
    }
    Plan plan() const override { return m_service.plan(); }
    ServiceCounters counters() const override { return m_service.counters(); }
    ServiceHealth health() const override { return m_service.health(); }
    std::map<JobStatus, std::size_t> job_counts() const override { return m_service.job_counts(); }
    Expected<std::string> reload_signatures() override { return m_service.reload_signatures(); }
    Expected<std::string> retro_hunt() override { return m_service.retro_hunt(); }
    std::string signatures() const override { return m_service.signatures_json(); }

private:
    ScanService& m_service;
};

} // namespace

Expected<std::unique_ptr<ApiServer>> ApiServer::start(ScanService& service, const ApiConfig& config) {
    return start(std::make_shared<ScanServiceBackend>(service), config);
}

} // namespace coldscan::scheduler
