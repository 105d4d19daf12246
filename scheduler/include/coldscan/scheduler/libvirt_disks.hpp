// The disks of libvirt domains, read-only: from a domain's XML (what libvirt's qemu hook gets on stdin) or
// from a libvirt connection (qemu:///system in production, test:///path/node.xml in tests).
// Thread rule: free functions; each call opens and closes its own read-only connection.
#pragma once

#include "coldscan/common/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

struct DomainDisk {
    std::string target; // the guest device name (<target dev=...>): "vda", "sda"
    // Where the bytes are, by kind: file -> <source file=...> (a host path), block -> dev= (a host device),
    // dir -> dir=, network -> name= ("pool/image" for rbd), volume -> volume= (in pool=); "" when absent.
    std::string source;
    std::string format;     // <driver type=...> ("qcow2", "raw"); "" when the XML does not say
    std::string kind;       // <disk type=...>: "file" (also when absent), "block", "dir", "network", "volume"
    bool read_only = false; // <readonly/>
};

// Every <disk device="disk"> of a domain's XML, in document order (device= absent counts as "disk"; cdroms,
// floppies and luns are left out). Hostile input is expected: no network, no entity loading, and a DOCTYPE is
// refused. Errors: invalid_argument (not well-formed, a DOCTYPE, no <domain> root, over 16 MiB).
[[nodiscard]] Expected<std::vector<DomainDisk>> disks_from_domain_xml(std::string_view xml);
struct DomainDescription {
    std::string name; // <name>; "" when absent
    std::vector<DomainDisk> disks;
};
// disks_from_domain_xml, and the domain's name.
[[nodiscard]] Expected<DomainDescription> describe_domain_xml(std::string_view xml);
// The domain's disks through a read-only connection (uri "" is libvirt's default), from its current XML.
// Errors: io (cannot connect, or libvirt fails), not_found (no such domain).
[[nodiscard]] Expected<std::vector<DomainDisk>> domain_disks(const std::string& uri,
                                                             const std::string& domain);
// The names of every domain the connection knows (running or not), sorted. Errors: io.
[[nodiscard]] Expected<std::vector<std::string>> list_domains(const std::string& uri);

} // namespace coldscan::scheduler
