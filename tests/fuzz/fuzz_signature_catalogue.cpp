// ClamAV database containers (.cvd/.cld/.cud: a header, then a tar, gzip-compressed or not) and plain
// database files, read into the signature catalogue. Databases come from freshclam or the operator, but a
// mirror or a disk can corrupt them. Oracles: a refusal is invalid_argument; an accepted database's finished
// catalogue has sorted, unique lines, a 64-digit engine part and detection set.
#include "coldscan/signatures/signature_catalogue.hpp"
#include "fuzz_support.hpp"

#include <algorithm>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace coldscan::signatures;
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    for (const char* name : {"daily.cvd", "daily.cld", "main.hdb"}) {
        SignatureCatalogue catalogue;
        const auto added = add_database(name, bytes, catalogue);
        if (!added) {
            FUZZ_CHECK(added.error().code == coldscan::Errc::invalid_argument);
            continue;
        }
        finish_catalogue(catalogue);
        FUZZ_CHECK(std::ranges::is_sorted(catalogue.lines));
        FUZZ_CHECK(std::ranges::adjacent_find(catalogue.lines) == catalogue.lines.end());
        FUZZ_CHECK(catalogue.engine_part.size() == 64 && catalogue.detection_set.size() == 64);
    }
    return 0;
}
