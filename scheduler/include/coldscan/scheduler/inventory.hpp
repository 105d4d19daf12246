// The hypervisor hosts and shared datastores that scans read from, with the limits that keep scans from
// piling onto one of them.
// Thread rule: shared, immutable once created.
#pragma once

#include "coldscan/common/error.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

struct HostSpec {
    std::string name;
    unsigned max_concurrent_scans = 2;
    std::uint64_t max_read_bytes_per_second = 0; // 0 = unlimited
    double pressure_threshold = 0.7;             // 0..1; above it the host starts no new scans
};

struct DatastoreSpec {
    std::string name;
    std::vector<std::string> roots; // absolute folders holding its images
    std::vector<std::string> hosts; // the hosts that mount it (Inventory host names)
    unsigned max_concurrent_scans = 6;
    std::uint64_t max_read_bytes_per_second = 0; // 0 = unlimited
};

class Inventory {
public:
    // Errc::invalid_argument, naming the culprit: an empty or duplicate host or datastore name, a zero
    // max_concurrent_scans, a pressure_threshold outside 0..1, a datastore without hosts or naming an
    // unknown host, a root that is not absolute or belongs to two datastores.
    [[nodiscard]] static Expected<Inventory> create(std::vector<HostSpec> hosts,
                                                    std::vector<DatastoreSpec> datastores);

    [[nodiscard]] const std::vector<HostSpec>& hosts() const noexcept { return m_hosts; }
    [[nodiscard]] const std::vector<DatastoreSpec>& datastores() const noexcept { return m_datastores; }
    [[nodiscard]] std::optional<std::size_t> host_index(std::string_view name) const;
    [[nodiscard]] std::optional<std::size_t> datastore_index(std::string_view name) const;
    // Whether host (an index) mounts datastore (an index).
    [[nodiscard]] bool mounts(std::size_t host, std::size_t datastore) const;
    // The datastore whose root holds path (a canonical absolute path; the longest root wins, matching
    // whole path components); nullopt if no root holds it.
    [[nodiscard]] std::optional<std::size_t> datastore_of(std::string_view path) const;

private:
    Inventory() = default;

    std::vector<HostSpec> m_hosts;
    std::vector<DatastoreSpec> m_datastores;
    std::map<std::string, std::size_t, std::less<>> m_host_index;
    std::map<std::string, std::size_t, std::less<>> m_datastore_index;
    std::vector<std::vector<bool>> m_mounts; // [datastore][host]
};

} // namespace coldscan::scheduler
