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

// The oracle: whatever from() accepts, written back by to() and read again, writes back the same. Returns
// what from() made of text, for further checks.
template <typename From, typename To> auto round_trip(std::string_view text, From from, To to) {
    auto read = from(text);
    if (read) {
        const std::string once = to(*read);
        auto again = from(once);
        FUZZ_CHECK(again.has_value() && to(*again) == once);
    }
    return read;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 8) {
    case 0:
        round_trip(text, disk::batch_from_wire, disk::batch_to_wire);
        break;
    case 1:
        round_trip(text, disk::start_from_wire, disk::start_to_wire);
        break;
    case 2:
        if (auto error = disk::error_from_wire(text)) {
            auto again = disk::error_from_wire(disk::error_to_wire(*error));
            FUZZ_CHECK(again.has_value() && again->code == error->code);
        }
        break;
    case 3:
        round_trip(text, sig::answer_from_wire, sig::answer_to_wire);
        break;
    case 4:
        round_trip(text, sig::engines_from_wire, sig::engines_to_wire);
        break;
    case 6:
        if (auto bytes = disk::progress_from_wire(text)) {
            FUZZ_CHECK(disk::progress_from_wire(disk::progress_to_wire(*bytes)) == bytes);
        }
        break;
    case 7:
        if (auto table = round_trip(
                text, [](std::string_view t) { return disk::table_from_wire(t, k_disk_size); },
                disk::table_to_wire)) {
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
