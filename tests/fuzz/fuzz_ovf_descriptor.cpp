// OVF descriptors (the XML of an .ova or .ovf package, written by whoever exported the VM). Oracles: every
// disk named is a plain file name (no folder, never "." or ".."), so a package can only name its own members
// or the files beside its descriptor.
#include "coldscan/disk/ovf_package.hpp"
#include "fuzz_support.hpp"

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view xml(reinterpret_cast<const char*>(data), size);
    auto disks = coldscan::disk::detail::ovf_disks(xml);
    if (!disks) {
        return 0;
    }
    for (const auto& disk : *disks) {
        FUZZ_CHECK(!disk.href.empty() && disk.href.find('/') == std::string::npos);
        FUZZ_CHECK(disk.href != "." && disk.href != "..");
    }
    return 0;
}
