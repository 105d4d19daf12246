// What the sandboxes' worker processes send back, parsed by coldscan as untrusted input (a worker parses
// hostile bytes and may be compromised): the filesystem worker's start message, file batches, errors, walk
// progress reports and partition tables (disk-access/src/filesystem_wire.cpp) and the engine host's load
// answer, scan requests and scan answers (signatures/src/engine_wire.cpp). The first byte picks the parser.
// Oracle: whatever a parser accepts, written back and parsed again, writes back the same.
#include "engine_wire.hpp"
#include "filesystem_wire.hpp"
#include "fuzz_support.hpp"

namespace disk = coldscan::disk::detail;
namespace sig = coldscan::signatures::detail;

constexpr std::uint64_t k_disk_size = 1ULL << 30; // the disk a partition table answer is checked against

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 8) {
    case 0:
        if (auto batch = disk::batch_from_wire(text)) {
            const std::string once = disk::batch_to_wire(*batch);
            auto again = disk::batch_from_wire(once);
            FUZZ_CHECK(again.has_value() && disk::batch_to_wire(*again) == once);
        }
        break;
    case 1:
        if (auto start = disk::start_from_wire(text)) {
            const std::string once = disk::start_to_wire(*start);
            auto again = disk::start_from_wire(once);
            FUZZ_CHECK(again.has_value() && disk::start_to_wire(*again) == once);
        }
        break;
    case 2:
        if (auto error = disk::error_from_wire(text)) {
            auto again = disk::error_from_wire(disk::error_to_wire(*error));
            FUZZ_CHECK(again.has_value() && again->code == error->code);
        }
        break;
    case 3:
        if (auto answer = sig::answer_from_wire(text)) {
            const std::string once = sig::answer_to_wire(*answer);
            auto again = sig::answer_from_wire(once);
            FUZZ_CHECK(again.has_value() && sig::answer_to_wire(*again) == once);
        }
        break;
    case 4:
        if (auto engines = sig::engines_from_wire(text)) {
            const std::string once = sig::engines_to_wire(*engines);
            auto again = sig::engines_from_wire(once);
            FUZZ_CHECK(again.has_value() && sig::engines_to_wire(*again) == once);
        }
        break;
    case 6:
        if (auto bytes = disk::progress_from_wire(text)) {
            FUZZ_CHECK(disk::progress_from_wire(disk::progress_to_wire(*bytes)) == bytes);
        }
        break;
    case 7:
        if (auto table = disk::table_from_wire(text, k_disk_size)) {
            const std::string once = disk::table_to_wire(*table);
            auto again = disk::table_from_wire(once, k_disk_size);
            FUZZ_CHECK(again.has_value() && disk::table_to_wire(*again) == once);
            for (const auto& p : table->partitions) {
                FUZZ_CHECK(p.size > 0 && p.offset < k_disk_size && p.size <= k_disk_size - p.offset);
            }
        }
        break;
    default:
        if (auto request = sig::request_from_wire(text)) {
            auto again = sig::request_from_wire(sig::request_to_wire(*request));
            FUZZ_CHECK(again.has_value() && again->path == request->path && again->size == request->size);
        }
        break;
    }
    return 0;
}
