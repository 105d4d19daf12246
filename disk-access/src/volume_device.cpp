#include "volume_device.hpp"

#include <algorithm>
#include <climits>

namespace coldscan::disk::detail {

namespace {

constexpr std::size_t k_max_places = 128; // LVM allows up to 128 stripes

std::unexpected<Error> misfit(const LogicalVolume& volume, const std::string& why) {
    return make_error(Errc::corrupt, "logical volume " + volume.device() + ": " + why);
}

} // namespace

Expected<void> volume_fits(const LogicalVolume& volume, const std::vector<std::uint64_t>& disk_sizes) {
    if (!volume.unsupported.empty()) {
        return {}; // never read through its map
    }
    std::uint64_t next = 0;
    for (const auto& segment : volume.segments) {
        const std::size_t places = segment.places.size();
        if (segment.lv_offset != next || segment.length == 0 || segment.length > UINT64_MAX - next) {
            return misfit(volume, "its segments do not follow each other");
        }
        if (places == 0 || places > k_max_places) {
            return misfit(volume, "a segment lies on " + std::to_string(places) + " places");
        }
        std::uint64_t share = segment.length;
        if (places > 1) {
            share = segment.length / places;
            if (segment.stripe_bytes == 0 || segment.length % places != 0 ||
                share % segment.stripe_bytes != 0) {
                return misfit(volume, "a striped segment does not divide into its stripes");
            }
        }
        for (const auto& place : segment.places) {
            if (place.disk >= disk_sizes.size() || place.offset > disk_sizes[place.disk] ||
                share > disk_sizes[place.disk] - place.offset) {
                return misfit(volume, "a segment lies outside its disk");
            }
        }
        next += segment.length;
    }
    if (next != volume.size) {
        return misfit(volume, "its segments do not cover its size");
    }
    return {};
}

Expected<void>
for_each_piece(const LogicalVolume& volume, std::uint64_t offset, std::uint64_t length,
               const std::function<Expected<void>(unsigned, std::uint64_t, std::uint64_t)>& piece) {
    if (offset > volume.size || length > volume.size - offset) {
        return make_error(Errc::invalid_argument, "a read past the end of " + volume.device());
    }
    auto segment =
        std::upper_bound(volume.segments.begin(), volume.segments.end(), offset,
                         [](std::uint64_t at, const VolumeSegment& s) { return at < s.lv_offset; });
    while (length > 0) {
        if (segment == volume.segments.begin()) {
            return make_error(Errc::internal, "an unchecked volume map: " + volume.device());
        }
        --segment; // segments start at 0 and cover the volume: one starts at or before offset
        const std::uint64_t in_segment = offset - segment->lv_offset;
        std::uint64_t size = std::min(length, segment->length - in_segment);
        const VolumePlace* place = &segment->places.front();
        std::uint64_t at = place->offset + in_segment;
        if (segment->places.size() > 1) {
            const std::uint64_t chunk = in_segment / segment->stripe_bytes;
            const std::uint64_t within = in_segment % segment->stripe_bytes;
            place = &segment->places[chunk % segment->places.size()];
            at = place->offset + (chunk / segment->places.size()) * segment->stripe_bytes + within;
            size = std::min(size, segment->stripe_bytes - within);
        }
        if (auto ok = piece(place->disk, at, size); !ok) {
            return ok;
        }
        offset += size;
        length -= size;
        segment = std::upper_bound(volume.segments.begin(), volume.segments.end(), offset,
                                   [](std::uint64_t a, const VolumeSegment& s) { return a < s.lv_offset; });
    }
    return {};
}

VolumeDevice::VolumeDevice(std::vector<std::shared_ptr<BlockDevice>> disks, LogicalVolume volume)
    : m_disks(std::move(disks)), m_volume(std::move(volume)) {}

Expected<void> VolumeDevice::read(std::uint64_t offset, std::span<std::byte> out) {
    return for_each_piece(m_volume, offset, out.size(),
                          [&](unsigned disk, std::uint64_t at, std::uint64_t size) -> Expected<void> {
                              if (disk >= m_disks.size()) {
                                  return make_error(Errc::internal, "a volume on a disk not given");
                              }
                              auto ok = m_disks[disk]->read(at, out.first(static_cast<std::size_t>(size)));
                              out = out.subspan(static_cast<std::size_t>(size));
                              return ok;
                          });
}

} // namespace coldscan::disk::detail
