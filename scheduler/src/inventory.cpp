#include "coldscan/scheduler/inventory.hpp"

#include <charconv>

namespace coldscan::scheduler {
namespace {

// "/a/b/" -> "/a/b"; "/" stays "/".
std::string without_trailing_slashes(std::string path) {
    while (path.size() > 1 && path.back() == '/') {
        path.pop_back();
    }
    return path;
}

std::string shortest(double value) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    return ec == std::errc{} ? std::string(buffer, end) : std::string("?");
}

bool root_holds(std::string_view root, std::string_view path) {
    if (root == "/") {
        return path.starts_with('/');
    }
    return path.starts_with(root) && (path.size() == root.size() || path[root.size()] == '/');
}

} // namespace

Expected<Inventory> Inventory::create(std::vector<HostSpec> hosts, std::vector<DatastoreSpec> datastores) {
    Inventory inventory;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        const HostSpec& host = hosts[i];
        if (host.name.empty()) {
            return make_error(Errc::invalid_argument, "host #" + std::to_string(i + 1) + " has no name");
        }
        if (host.max_concurrent_scans == 0) {
            return make_error(Errc::invalid_argument,
                              "host " + host.name + ": max_concurrent_scans must be at least 1");
        }
        if (!(host.pressure_threshold >= 0.0 && host.pressure_threshold <= 1.0)) {
            return make_error(Errc::invalid_argument, "host " + host.name + ": pressure_threshold " +
                                                          shortest(host.pressure_threshold) +
                                                          " is outside 0..1");
        }
        if (!inventory.m_host_index.emplace(host.name, i).second) {
            return make_error(Errc::invalid_argument, "host " + host.name + " is listed twice");
        }
    }
    std::map<std::string, std::string, std::less<>> root_owner;
    inventory.m_mounts.assign(datastores.size(), std::vector<bool>(hosts.size(), false));
    for (std::size_t i = 0; i < datastores.size(); ++i) {
        DatastoreSpec& datastore = datastores[i];
        if (datastore.name.empty()) {
            return make_error(Errc::invalid_argument, "datastore #" + std::to_string(i + 1) + " has no name");
        }
        if (datastore.max_concurrent_scans == 0) {
            return make_error(Errc::invalid_argument,
                              "datastore " + datastore.name + ": max_concurrent_scans must be at least 1");
        }
        if (!inventory.m_datastore_index.emplace(datastore.name, i).second) {
            return make_error(Errc::invalid_argument, "datastore " + datastore.name + " is listed twice");
        }
        if (datastore.hosts.empty()) {
            return make_error(Errc::invalid_argument, "datastore " + datastore.name + ": no host mounts it");
        }
        for (const std::string& host : datastore.hosts) {
            auto found = inventory.m_host_index.find(host);
            if (found == inventory.m_host_index.end()) {
                return make_error(Errc::invalid_argument,
                                  "datastore " + datastore.name + ": unknown host " + host);
            }
            inventory.m_mounts[i][found->second] = true;
        }
        for (std::string& root : datastore.roots) {
            if (!root.starts_with('/')) {
                return make_error(Errc::invalid_argument, "datastore " + datastore.name + ": root '" + root +
                                                              "' is not an absolute path");
            }
            root = without_trailing_slashes(std::move(root));
            auto [owner, added] = root_owner.emplace(root, datastore.name);
            if (!added) {
                return make_error(Errc::invalid_argument, "root " + root + " belongs to datastores " +
                                                              owner->second + " and " + datastore.name);
            }
        }
    }
    inventory.m_hosts = std::move(hosts);
    inventory.m_datastores = std::move(datastores);
    return inventory;
}

std::optional<std::size_t> Inventory::host_index(std::string_view name) const {
    auto found = m_host_index.find(name);
    if (found == m_host_index.end()) {
        return std::nullopt;
    }
    return found->second;
}

std::optional<std::size_t> Inventory::datastore_index(std::string_view name) const {
    auto found = m_datastore_index.find(name);
    if (found == m_datastore_index.end()) {
        return std::nullopt;
    }
    return found->second;
}

bool Inventory::mounts(std::size_t host, std::size_t datastore) const {
    return datastore < m_mounts.size() && host < m_mounts[datastore].size() && m_mounts[datastore][host];
}

std::optional<std::size_t> Inventory::datastore_of(std::string_view path) const {
    std::optional<std::size_t> best;
    std::size_t best_length = 0;
    for (std::size_t i = 0; i < m_datastores.size(); ++i) {
        for (const std::string& root : m_datastores[i].roots) {
            if (root_holds(root, path) && (!best || root.size() > best_length)) {
                best = i;
                best_length = root.size();
            }
        }
    }
    return best;
}

} // namespace coldscan::scheduler
