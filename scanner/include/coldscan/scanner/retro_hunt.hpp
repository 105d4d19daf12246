// A retro-hunt (docs/signature-updates.md): after an update adds hash signatures, which contents the cache
// ever verdicted hold an object one of them detects, and where they were seen, without reading a disk. The
// stored verdicts of every context are compared, each through the lineage's change from the set it was made
// with to the current one, by the size and digests of every layer libclamav scanned in the content.
// Thread rule: a function over a thread-safe store and lineage; the result is a value.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/scanner/content_places.hpp"
#include "coldscan/scanner/kv_store.hpp"
#include "coldscan/scanner/set_lineage.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scanner {

struct RetroHit {
    Sha256Digest content;
    std::vector<std::string> signatures; // the detections a scan with the current set reports, sorted
    std::vector<ContentPlace> places;    // where it was seen (none: its places were collected)
};

struct RetroHunt {
    std::string detection_set;          // hunted for
    std::vector<std::string> from_sets; // the sets the stored verdicts were made with, compared with it
    std::uint64_t verdicts = 0;         // stored verdicts read (every context and variant)
    std::uint64_t contents = 0;         // distinct contents among them
    std::uint64_t current = 0;          // contents verdicted with this set already: nothing to hunt
    std::uint64_t compared = 0;         // contents compared through the lineage
    // Contents no digest can answer for, checked by the next scan that meets them: made with a set the
    // lineage no longer keeps, without recorded digests, or holding a layer libclamav derives unseen buffers
    // from (text, HTML, ...) while hash lines were added.
    std::uint64_t unproven = 0;
    std::uint64_t hash_lines_added = 0; // over every set compared
    std::vector<RetroHit> hits;         // by content
};

// What the current set's allow-list lines (.fp .sfp .ign .ign2) name, read coarsely: every field of every
// line (signature names), and every field that is a hex digest (allowed files). A hit one of them may concern
// is not called a detection (libclamav may drop it): it is counted unproven, left to the next scan.
struct AllowListFields {
    std::set<std::string, std::less<>> fields;
    std::set<std::string, std::less<>> digests; // lower-case hex
};
// Reads them from the set's databases. Error: a database could not be read again.
[[nodiscard]] Expected<AllowListFields> allow_list_fields(const signatures::SignatureSet& signatures);

// Hunts the store's verdicts for hash lines that `detection_set` (recorded in the lineage, whose reader
// reads its texts) added since each verdict was made; a hit the allow lists may concern is unproven.
// Error: the store failed.
[[nodiscard]] Expected<RetroHunt> retro_hunt(const KvStore& store, SetLineage& lineage,
                                             std::string_view detection_set,
                                             const AllowListFields& allowed = {});

// The whole hunt for the set verdicts are made with from now on: records its lines in the lineage (as the
// next scan would), reads its allow lists, hunts. Errors: the store failed, the databases could not be read
// again.
[[nodiscard]] Expected<RetroHunt> retro_hunt(KvStore& store, const signatures::SignatureSet& signatures);

// The hunt as a JSON object (docs/report-schema.md, "Retro-hunt"): what `coldscan retro-hunt --json` prints
// and `POST /v1/retro-hunt` answers. Guest paths that are not UTF-8 have their bad bytes replaced.
[[nodiscard]] std::string retro_hunt_json(const RetroHunt& hunt);

} // namespace coldscan::scanner
