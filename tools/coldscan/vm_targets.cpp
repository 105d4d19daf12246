#include "vm_targets.hpp"

#include "coldscan/scheduler/libvirt_disks.hpp"

#include <cstdio>

namespace coldscan::cli {

namespace {

constexpr std::size_t k_max_domain_xml = 16U << 20;
constexpr std::string_view k_libvirt_prefix = "libvirt:";

// The scannable form of a domain's disks: file disks only, each with a source.
Expected<std::vector<std::pair<std::string, std::string>>>
file_disks(const std::vector<scheduler::DomainDisk>& disks) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& disk : disks) {
        if (disk.kind != "file") {
            return make_error(Errc::unsupported, "cannot scan a " +
                                                     (disk.kind.empty() ? "typeless" : disk.kind) +
                                                     " disk (" + disk.target + ")");
        }
        if (disk.source.empty()) {
            return make_error(Errc::invalid_argument, "disk " + disk.target + " has no source file");
        }
        out.emplace_back(disk.source, disk.format);
    }
    if (out.empty()) {
        return make_error(Errc::invalid_argument, "the domain has no disk to scan");
    }
    return out;
}

scanner::ScanTarget target_of(std::string name,
                              const std::vector<std::pair<std::string, std::string>>& disks) {
    scanner::ScanTarget target{std::move(name), {}, {}};
    for (const auto& [path, format] : disks) {
        target.disks.push_back(scanner::VmDisk{
            path, format.empty() ? std::nullopt : std::optional<std::string>(format), 0, 0, ""});
    }
    return target;
}

} // namespace

Expected<std::string> read_domain_xml(const std::string& name) {
    std::FILE* in = name == "-" ? stdin : std::fopen(name.c_str(), "rb");
    if (in == nullptr) {
        return make_error(Errc::io, errno_message("cannot read " + name));
    }
    std::string xml;
    char buffer[65536];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, in)) > 0) {
        xml.append(buffer, n);
        if (xml.size() > k_max_domain_xml) {
            break;
        }
    }
    const bool failed = std::ferror(in) != 0;
    if (in != stdin) {
        std::fclose(in);
    }
    if (failed) {
        return make_error(Errc::io, "cannot read " + (name == "-" ? std::string("stdin") : name));
    }
    if (xml.size() > k_max_domain_xml) {
        return make_error(Errc::invalid_argument, "the domain XML is larger than 16 MiB");
    }
    return xml;
}

Expected<DomainXmlVm> domain_xml_vm(const std::string& name) {
    auto xml = read_domain_xml(name);
    if (!xml) {
        return std::unexpected(xml.error());
    }
    auto domain = scheduler::describe_domain_xml(*xml);
    if (!domain) {
        return std::unexpected(domain.error());
    }
    auto disks = file_disks(domain->disks);
    if (!disks) {
        return std::unexpected(disks.error());
    }
    return DomainXmlVm{std::move(domain->name), std::move(*disks)};
}

Expected<scanner::ScanTarget> vm_from_domain_xml(const std::string& file) {
    auto vm = domain_xml_vm(file);
    if (!vm) {
        return make_error(vm.error().code, file + ": " + vm.error().message);
    }
    return target_of(file, vm->disks);
}

Expected<scanner::ScanTarget> vm_from_libvirt(const std::string& target) {
    const std::string domain = target.substr(k_libvirt_prefix.size());
    auto disks = scheduler::domain_disks("", domain);
    if (!disks) {
        return std::unexpected(disks.error());
    }
    auto files = file_disks(*disks);
    if (!files) {
        return make_error(files.error().code, target + ": " + files.error().message);
    }
    return target_of(target, *files);
}

scanner::ScanTarget vm_from_disks(const std::vector<std::string>& disks) {
    std::string name = "vm:";
    for (std::size_t i = 0; i < disks.size(); ++i) {
        name += (i == 0 ? "" : "+") + disks[i];
    }
    scanner::ScanTarget target{name, {}, {}};
    for (const auto& d : disks) {
        target.disks.push_back(scanner::VmDisk{d, std::nullopt, 0, 0, ""});
    }
    return target;
}

} // namespace coldscan::cli
