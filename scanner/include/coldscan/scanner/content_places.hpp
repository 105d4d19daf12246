// Where each content was last seen: one record per place (target, image, filesystem, path: a disk scanned
// as an image and as a VM's disk is two places), overwritten when the file there holds other bytes, so a
// retro-hunt (retro_hunt.hpp) names the images and paths that hold a content without reading a disk. Stored
// in KeySpace::content_places, through the scan's staging like the level-1 records (a place is recorded only
// once its image is known consistent), refreshed at most once a day, collected by `coldscan cache gc` like
// the other records. Thread rule: free functions over a KvStore (which is thread-safe); values.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/scanner/kv_store.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scanner {

struct ContentPlace {
    std::string target;    // the image or folder as the scan named it
    std::string device;    // the filesystem's device in the image ("" for a folder)
    std::string path;      // inside the filesystem
    std::int64_t seen = 0; // seconds since the epoch: when a scan last found this content there
    auto operator<=>(const ContentPlace&) const = default;
};

// What keys a place: the image's and the filesystem's identities (FileIdentity's) and the path.
struct PlaceKey {
    std::string_view image_identity;
    std::string_view filesystem_identity;
    std::string_view path;
};

// Records that `place` holds `content` as of place.seen, unless the store already says so, less than a day
// before. Error: the store failed.
[[nodiscard]] Expected<void> remember_place(KvStore& store, const PlaceKey& key, const ContentPlace& place,
                                            const Sha256Digest& content);

// Every recorded place of each of these contents (one walk over the places). Error: the store failed.
[[nodiscard]] Expected<std::map<Sha256Digest, std::vector<ContentPlace>>>
places_of(const KvStore& store, const std::set<Sha256Digest>& contents);

// The last-use time of a place record, nullopt when it does not decode (for stats, gc and verify).
[[nodiscard]] std::optional<std::int64_t> place_last_use(std::string_view key, std::string_view value);

} // namespace coldscan::scanner
