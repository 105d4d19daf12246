// LVM2 on disk (lib/format_text/layout.h in LVM2's source): a label in one of the PV's first four sectors
// ("LABELONE", its sector number, a CRC, "LVM2 001") followed by the PV header (UUID, size, data areas,
// metadata areas). Each metadata area opens with a header (CRC, magic, its own offset and size) whose first
// raw location points at the committed text metadata inside the area, a circular buffer: the text may wrap
// to just after the header. Every copy on every PV is read; the highest seqno wins, and copies that share
// it must hold the same text (lvm itself would refuse to choose).
#include "lvm_volumes.hpp"

#include "lvm_metadata.hpp"

#include <algorithm>
#include <map>
#include <optional>

namespace coldscan::disk::detail {

namespace {

constexpr std::uint64_t k_sector = 512;
constexpr std::size_t k_label_sectors = 4;
constexpr std::string_view k_label_id = "LABELONE";
constexpr std::string_view k_label_type = "LVM2 001";
constexpr std::string_view k_mda_magic = " LVM2 x[5A%r0N*>";
constexpr std::size_t k_max_areas = 8;
constexpr std::uint64_t k_max_metadata = 16ULL << 20;
constexpr std::uint32_t k_raw_locn_ignored = 1;

std::uint64_t le(const std::string& bytes, std::size_t at, std::size_t width) {
    std::uint64_t value = 0;
    for (std::size_t i = width; i-- > 0;) {
        value = (value << 8U) | static_cast<unsigned char>(bytes[at + i]);
    }
    return value;
}

Expected<std::string> read_bytes(BlockDevice& disk, std::uint64_t offset, std::uint64_t size) {
    std::string bytes(static_cast<std::size_t>(size), '\0');
    auto ok = disk.read(offset, std::as_writable_bytes(std::span(bytes)));
    if (!ok) {
        return std::unexpected(ok.error());
    }
    return bytes;
}

struct Area {
    std::uint64_t offset = 0; // from the PV's start
    std::uint64_t size = 0;
};

struct PvLabel {
    std::string uuid; // 32 characters, no dashes
    std::vector<Area> metadata;
};

std::string where(const PvCandidate& pv) {
    return "the LVM physical volume on disk " + std::to_string(pv.disk) + " at byte " +
           std::to_string(pv.offset);
}

// The areas list at `at` of the label sector: (offset, size) pairs ending in a zero pair.
std::optional<std::vector<Area>> area_list(const std::string& sector, std::size_t& at) {
    std::vector<Area> areas;
    for (;;) {
        if (at + 16 > sector.size() || areas.size() > k_max_areas) {
            return std::nullopt;
        }
        const Area area{le(sector, at, 8), le(sector, at + 8, 8)};
        at += 16;
        if (area.offset == 0) {
            return areas;
        }
        areas.push_back(area);
    }
}

// The PV label in the candidate's first sectors, if there is one. A damaged label is a warning.
Expected<std::optional<PvLabel>> read_label(BlockDevice& disk, const PvCandidate& pv,
                                            std::vector<std::string>& warnings) {
    if (pv.size < k_sector * k_label_sectors) {
        return std::nullopt;
    }
    auto head = read_bytes(disk, pv.offset, k_sector * k_label_sectors);
    if (!head) {
        return std::unexpected(head.error());
    }
    for (std::size_t index = 0; index < k_label_sectors; ++index) {
        const std::string sector = head->substr(index * k_sector, k_sector);
        if (!sector.starts_with(k_label_id) || sector.compare(24, 8, k_label_type) != 0) {
            continue;
        }
        const std::uint64_t header_at = le(sector, 20, 4);
        if (le(sector, 8, 8) != index || le(sector, 16, 4) != lvm_crc(k_lvm_initial_crc, sector.substr(20)) ||
            header_at < 32 || header_at + 40 > k_sector) {
            warnings.push_back(where(pv) + " has a damaged label");
            return std::nullopt;
        }
        PvLabel label;
        label.uuid = sector.substr(header_at, 32);
        std::size_t at = header_at + 40;
        auto data = area_list(sector, at);
        auto metadata = data ? area_list(sector, at) : std::nullopt;
        if (!metadata) {
            warnings.push_back(where(pv) + " has a malformed area list");
            return std::nullopt;
        }
        label.metadata = std::move(*metadata);
        return label;
    }
    return std::nullopt;
}

struct MetadataCopy {
    std::string pv_uuid;
    std::string text;
    LvmVolumeGroup group;
};

// The committed text of one metadata area; nullopt (with a reason) when the area is damaged or unused.
Expected<std::optional<std::string>> read_area_text(BlockDevice& disk, const PvCandidate& pv,
                                                    const Area& area, std::string& problem) {
    if (area.size < 2 * k_sector || area.offset > pv.size || area.size > pv.size - area.offset) {
        problem = "a metadata area outside the volume";
        return std::nullopt;
    }
    auto header = read_bytes(disk, pv.offset + area.offset, k_sector);
    if (!header) {
        return std::unexpected(header.error());
    }
    if (le(*header, 0, 4) != lvm_crc(k_lvm_initial_crc, std::string_view(*header).substr(4)) ||
        header->compare(4, k_mda_magic.size(), k_mda_magic) != 0 || le(*header, 20, 4) != 1 ||
        le(*header, 24, 8) != area.offset || le(*header, 32, 8) != area.size) {
        problem = "a damaged metadata area header";
        return std::nullopt;
    }
    const std::uint64_t text_at = le(*header, 40, 8);
    const std::uint64_t text_size = le(*header, 48, 8);
    if ((le(*header, 60, 4) & k_raw_locn_ignored) != 0 || text_size == 0) {
        return std::nullopt; // an area lvm was told to ignore, or never written: not a damaged copy
    }
    if (text_at < k_sector || text_at >= area.size || text_size > area.size - k_sector ||
        text_size > k_max_metadata) {
        problem = "metadata outside its area";
        return std::nullopt;
    }
    // A circular buffer after the header: the text may continue right after it.
    const std::uint64_t first = std::min(text_size, area.size - text_at);
    auto text = read_bytes(disk, pv.offset + area.offset + text_at, first);
    if (!text) {
        return std::unexpected(text.error());
    }
    if (first < text_size) {
        auto rest = read_bytes(disk, pv.offset + area.offset + k_sector, text_size - first);
        if (!rest) {
            return std::unexpected(rest.error());
        }
        *text += *rest;
    }
    if (lvm_crc(k_lvm_initial_crc, *text) != le(*header, 56, 4)) {
        problem = "metadata whose checksum does not match";
        return std::nullopt;
    }
    return text;
}

Expected<void> read_copies(BlockDevice& disk, const PvCandidate& pv, const PvLabel& label,
                           std::vector<MetadataCopy>& copies, std::vector<std::string>& warnings) {
    for (std::size_t i = 0; i < label.metadata.size(); ++i) {
        std::string problem;
        auto text = read_area_text(disk, pv, label.metadata[i], problem);
        if (!text) {
            return std::unexpected(text.error());
        }
        if (!problem.empty()) {
            warnings.push_back(where(pv) + ", metadata area " + std::to_string(i + 1) + ": " + problem);
        }
        if (!*text) {
            continue;
        }
        auto group = parse_lvm_metadata(**text);
        if (!group) {
            warnings.push_back(where(pv) + ", metadata area " + std::to_string(i + 1) + ": " +
                               group.error().message);
            continue;
        }
        copies.push_back(MetadataCopy{label.uuid, std::move(**text), std::move(*group)});
    }
    return {};
}

struct PvPlace {
    unsigned disk = 0;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
};

std::string unsupported_type(const std::string& type) {
    if (type == "thin") {
        return "thin volumes";
    }
    if (type == "snapshot") {
        return "old-style snapshots (a copy-on-write store over the origin)";
    }
    if (type == "mirror" || type.starts_with("raid")) {
        return type + " volumes (mirrors and RAID)";
    }
    if (type == "cache" || type == "writecache" || type == "vdo") {
        return type + " volumes";
    }
    return "LVM segment type " + type;
}

// One segment's places on the disks, or why it cannot be mapped.
Expected<VolumeSegment> map_segment(const LvmVolumeGroup& group, const LvmSegment& segment,
                                    const std::map<std::string, PvPlace>& places) {
    const std::uint64_t extent_bytes = group.extent_size * k_sector;
    const std::size_t stripes = segment.stripes.size();
    VolumeSegment out;
    if (__builtin_mul_overflow(segment.start_extent, extent_bytes, &out.lv_offset) ||
        __builtin_mul_overflow(segment.extent_count, extent_bytes, &out.length) ||
        segment.extent_count % stripes != 0) {
        return make_error(Errc::corrupt, "a segment out of range");
    }
    out.stripe_bytes = stripes > 1 ? segment.stripe_size * k_sector : 0;
    const std::uint64_t share = segment.extent_count / stripes;
    for (const auto& stripe : segment.stripes) {
        const auto pv = std::ranges::find(group.pvs, stripe.pv, &LvmPvEntry::name);
        if (pv == group.pvs.end()) {
            return make_error(Errc::corrupt, "a segment names an unknown physical volume");
        }
        const auto found = places.find(pv->id);
        if (found == places.end()) {
            return make_error(Errc::not_found, "a volume whose physical volume " + pv->id +
                                                   " is on no disk given (scan all the VM's disks as one "
                                                   "target: --one-vm, libvirt:DOMAIN or --domain-xml)");
        }
        std::uint64_t at = 0;
        if (stripe.start_extent > pv->pe_count || share > pv->pe_count - stripe.start_extent ||
            __builtin_mul_overflow(stripe.start_extent, extent_bytes, &at) ||
            __builtin_add_overflow(at, pv->pe_start * k_sector, &at) || at > found->second.size) {
            return make_error(Errc::corrupt, "a segment lies outside its physical volume");
        }
        out.places.push_back(VolumePlace{found->second.disk, found->second.offset + at});
    }
    return out;
}

LogicalVolume map_volume(const LvmVolumeGroup& group, const LvmLvEntry& lv,
                         const std::map<std::string, PvPlace>& places) {
    LogicalVolume volume;
    volume.group = group.name;
    volume.name = lv.name;
    std::uint64_t next = 0;
    for (const auto& segment : lv.segments) {
        if (segment.type != "striped") {
            volume.unsupported = unsupported_type(segment.type);
        } else if (segment.start_extent != next) {
            volume.unsupported = "its segments do not follow each other";
        } else if (auto mapped = map_segment(group, segment, places); !mapped) {
            volume.unsupported = mapped.error().message;
        } else {
            volume.size = mapped->lv_offset + mapped->length;
            volume.segments.push_back(std::move(*mapped));
        }
        if (!volume.unsupported.empty()) {
            volume.segments.clear();
            return volume;
        }
        next = segment.start_extent + segment.extent_count;
    }
    if (volume.segments.empty()) {
        volume.unsupported = "it has no segments";
    }
    return volume;
}

// The copy-on-write store of an old-style snapshot: LVM keeps the snapshot as an internal LV ("snapshot0")
// whose segment names the store, and users (lvs, /dev, libguestfs) know it by the store's name.
std::optional<std::string> snapshot_store(const LvmLvEntry& lv) {
    for (const auto& segment : lv.segments) {
        if (segment.type == "snapshot" && !segment.cow_store.empty()) {
            return segment.cow_store;
        }
    }
    return std::nullopt;
}

bool is_thin_pool(const LvmLvEntry& lv) {
    return std::ranges::any_of(lv.segments, [](const LvmSegment& s) { return s.type == "thin-pool"; });
}

// One visible LV as the user knows it, mapped or with the reason it is not.
LogicalVolume volume_of(const LvmVolumeGroup& group, const LvmLvEntry& lv,
                        const std::map<std::string, PvPlace>& places) {
    LogicalVolume volume = map_volume(group, lv, places);
    if (auto store = snapshot_store(lv)) {
        volume.name = *store;
    } else if (is_thin_pool(lv)) {
        volume.container = true;
        volume.unsupported = "an LVM thin pool (its thin volumes are listed on their own)";
    }
    return volume;
}

// The newest consistent copy of each group; warnings for stale and disagreeing copies.
std::vector<const MetadataCopy*> newest_copies(const std::vector<MetadataCopy>& copies,
                                               std::vector<std::string>& warnings) {
    std::map<std::string, std::vector<const MetadataCopy*>> by_group;
    for (const auto& copy : copies) {
        by_group[copy.group.id].push_back(&copy);
    }
    std::vector<const MetadataCopy*> newest;
    for (const auto& [id, group_copies] : by_group) {
        const MetadataCopy* best =
            *std::ranges::max_element(group_copies, {}, [](const MetadataCopy* c) { return c->group.seqno; });
        bool agree = true;
        for (const MetadataCopy* copy : group_copies) {
            if (copy->group.seqno < best->group.seqno) {
                warnings.push_back("volume group " + best->group.name + ": the physical volume " +
                                   copy->pv_uuid + " holds an older metadata copy (seqno " +
                                   std::to_string(copy->group.seqno) + " < " +
                                   std::to_string(best->group.seqno) + ")");
            } else if (copy->text != best->text) {
                agree = false;
            }
        }
        if (!agree) {
            warnings.push_back("volume group " + best->group.name + ": metadata copies with seqno " +
                               std::to_string(best->group.seqno) +
                               " disagree; its logical volumes are not read directly");
            continue;
        }
        newest.push_back(best);
    }
    return newest;
}

} // namespace

bool valid_lvm_name(const std::string& name) {
    if (name.empty() || name.size() > 127 || name == "." || name == ".." || name.starts_with('-')) {
        return false;
    }
    return std::ranges::all_of(name, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '_' || c == '.' ||
               c == '-';
    });
}

Expected<VolumeLayout> find_logical_volumes(const std::vector<BlockDevice*>& disks,
                                            const std::vector<PvCandidate>& candidates) {
    VolumeLayout layout;
    std::vector<MetadataCopy> copies;
    std::map<std::string, PvPlace> places; // by PV UUID
    for (const auto& candidate : candidates) {
        if (candidate.disk >= disks.size()) {
            return make_error(Errc::internal, "a physical volume candidate on a disk not given");
        }
        BlockDevice& disk = *disks[candidate.disk];
        auto label = read_label(disk, candidate, layout.warnings);
        if (!label) {
            return std::unexpected(label.error());
        }
        if (!*label) {
            continue;
        }
        places.emplace((*label)->uuid, PvPlace{candidate.disk, candidate.offset, candidate.size});
        layout.pvs.push_back(FoundPv{candidate.disk, candidate.offset, ""});
        if (auto read = read_copies(disk, candidate, **label, copies, layout.warnings); !read) {
            return std::unexpected(read.error());
        }
    }
    for (std::size_t i = 0; i < layout.pvs.size(); ++i) {
        // The group each PV belongs to, named by any copy it or another PV holds.
        for (const auto& copy : copies) {
            for (const auto& pv : copy.group.pvs) {
                const auto place = places.find(pv.id);
                if (place != places.end() && place->second.disk == layout.pvs[i].disk &&
                    place->second.offset == layout.pvs[i].offset) {
                    layout.pvs[i].group = copy.group.name;
                }
            }
        }
    }
    auto newest = newest_copies(copies, layout.warnings);
    if (std::erase_if(newest, [](const MetadataCopy* c) { return !valid_lvm_name(c->group.name); }) > 0) {
        layout.warnings.push_back("a volume group with an invalid name is not read");
    }
    for (auto& pv : layout.pvs) { // a group refused above: its PVs are not accounted for by any volume
        if (std::ranges::none_of(newest, [&](const MetadataCopy* c) { return c->group.name == pv.group; })) {
            pv.group.clear();
        }
    }
    for (const MetadataCopy* copy : newest) {
        const LvmVolumeGroup& group = copy->group;
        std::vector<std::string> stores; // named by their snapshots
        for (const auto& lv : group.lvs) {
            if (auto store = snapshot_store(lv)) {
                stores.push_back(*store);
            }
        }
        for (const auto& lv : group.lvs) {
            if (!lv.visible || std::ranges::find(stores, lv.name) != stores.end()) {
                continue; // a part of another volume (thin pool data, a mirror leg, a snapshot's store)
            }
            LogicalVolume volume = volume_of(group, lv, places);
            if (!valid_lvm_name(volume.name)) {
                layout.warnings.push_back("volume group " + group.name +
                                          ": a logical volume with an invalid name is not read");
                continue;
            }
            layout.volumes.push_back(std::move(volume));
        }
    }
    return layout;
}

} // namespace coldscan::disk::detail
