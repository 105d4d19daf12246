// A VM as one scan target made of all its disks: from libvirt (libvirt:DOMAIN, read-only connection), from a
// domain XML file (--domain-xml), or from disks named on the command line (--one-vm).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scanner/scan_run.hpp"

#include <string>
#include <utility>
#include <vector>

namespace coldscan::cli {

// A domain XML file ("-": stdin), at most 16 MiB. Errors: io, invalid_argument (too big).
[[nodiscard]] Expected<std::string> read_domain_xml(const std::string& name);

struct DomainXmlVm {
    std::string name;                                       // the domain's <name>; "" when absent
    std::vector<std::pair<std::string, std::string>> disks; // source file, <driver type> ("" when none)
};
// The domain XML in `name`: its name and every disk's source file, in the XML's order.
// Errors: those of read_domain_xml; unsupported (a disk that is not a file: block, network, volume);
// invalid_argument (a disk without a source, no disk at all).
[[nodiscard]] Expected<DomainXmlVm> domain_xml_vm(const std::string& name);

// The VM target of a domain XML file: named after the file, its disks in the XML's order.
[[nodiscard]] Expected<scanner::ScanTarget> vm_from_domain_xml(const std::string& file);
// libvirt:DOMAIN through libvirt's default connection (LIBVIRT_DEFAULT_URI). Errors: as domain_disks, and
// as domain_xml_disks for what the disks are.
[[nodiscard]] Expected<scanner::ScanTarget> vm_from_libvirt(const std::string& target);
// The disks named on the command line as one VM, in order: "vm:DISK1+DISK2".
[[nodiscard]] scanner::ScanTarget vm_from_disks(const std::vector<std::string>& disks);

} // namespace coldscan::cli
