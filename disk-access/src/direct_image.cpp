#include "coldscan/disk/direct_image.hpp"

#include "coldscan/common/sha256.hpp"
#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/disk/partition_table.hpp"
#include "disk_layout.hpp"
#include "extent_map.hpp"
#include "filesystem_reader.hpp"
#include "listed_source.hpp"
#include "qemu_file_view.hpp"
#include "qemu_nbd_server.hpp"
#include "sandboxed_filesystem.hpp"
#include "volume_device.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <spdlog/spdlog.h>
#include <unordered_map>

namespace coldscan::disk {

namespace {

constexpr std::size_t k_signature_window = 128 * 1024; // covers every superblock probed below
constexpr std::size_t k_inspection_file_limit = 64 * 1024;

// GPT partition types that never hold a filesystem: no reason to start the appliance for them.
constexpr std::string_view k_bios_boot_type = "21686148-6449-6e6f-744e-656564454649";
constexpr std::string_view k_microsoft_reserved_type = "e3c9e316-0b5c-4db8-817d-f92df00215ae";

bool has_at(const std::vector<std::byte>& bytes, std::size_t at, std::string_view magic) {
    if (at + magic.size() > bytes.size()) {
        return false;
    }
    return std::equal(magic.begin(), magic.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at),
                      [](char c, std::byte b) { return static_cast<std::byte>(c) == b; });
}

// What a partition the direct reader refused holds, by its superblock magic.
std::string foreign_type(BlockDevice& device, std::uint64_t offset, std::uint64_t size) {
    std::vector<std::byte> head(static_cast<std::size_t>(std::min<std::uint64_t>(size, k_signature_window)));
    if (!device.read(offset, head)) {
        return "unknown";
    }
    if (has_at(head, 0, "LUKS\xba\xbe")) { // LUKS1 and LUKS2
        return "crypto_LUKS";
    }
    if (has_at(head, 3, "-FVE-FS-")) {
        return "BitLocker"; // as blkid and libguestfs name it
    }
    for (std::size_t sector = 0; sector < 4; ++sector) {
        if (has_at(head, sector * 512, "LABELONE") && has_at(head, sector * 512 + 24, "LVM2 001")) {
            return "LVM2_member";
        }
    }
    if (has_at(head, 0, "XFSB")) {
        return "xfs";
    }
    if (has_at(head, 0x10040, "_BHRfS_M")) {
        return "btrfs";
    }
    if (has_at(head, 4086, "SWAPSPACE2") || has_at(head, 4086, "SWAP-SPACE")) {
        return "swap";
    }
    if (std::ranges::all_of(head, [](std::byte b) { return b == std::byte{0}; })) {
        return "empty";
    }
    return "unknown";
}

// "KEY=value" / KEY="value" lines of os-release.
std::map<std::string, std::string> os_release_fields(std::string_view text) {
    std::map<std::string, std::string> fields;
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        const auto equals = line.find('=');
        if (equals == std::string_view::npos || line.starts_with('#')) {
            continue;
        }
        std::string_view value = line.substr(equals + 1);
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
            value.back() == value.front()) {
            value = value.substr(1, value.size() - 2);
        }
        fields.emplace(std::string(line.substr(0, equals)), std::string(value));
    }
    return fields;
}

std::string first_line_of(std::string_view text) {
    const auto end = text.find_first_of("\r\n");
    return std::string(text.substr(0, end));
}

// The data of a listed filesystem, read along its runs; any thread.
class TskReads final : public detail::FileReads {
public:
    TskReads(detail::FilesystemReader& fs, std::unordered_map<std::string, detail::FsFile> files)
        : m_fs(fs), m_files(std::move(files)) {}
    Expected<std::size_t> pread(const std::string& path, std::uint64_t offset,
                                std::span<std::byte> out) override {
        const auto found = m_files.find(path);
        if (found == m_files.end()) {
            return make_error(Errc::internal, "not a listed file");
        }
        return m_fs.read(found->second, offset, out);
    }

private:
    detail::FilesystemReader& m_fs;
    const std::unordered_map<std::string, detail::FsFile> m_files;
};

} // namespace

struct DirectImage::Impl {
    std::unique_ptr<detail::QemuNbdServer> server; // none for an export made by someone else
    std::shared_ptr<NbdDevice> device;
    std::vector<std::string> warnings;
    std::map<std::string, std::unique_ptr<detail::FilesystemReader>> opened; // by device name
    bool sandbox = false;
    detail::WorkerDisk worker_disk;         // where a filesystem worker connects
    std::shared_ptr<ReadThrottle> throttle; // charged for the workers' own reads
    detail::WorkerLimits worker_limits;

    // What both ways of opening an image take from the options for the filesystem workers.
    void take_worker_options(const DirectOptions& options) {
        sandbox = options.sandbox;
        throttle = options.throttle;
        worker_limits.answer_within = options.stall_timeout;
    }

    std::map<std::string, detail::LogicalVolume> volumes; // the LVs read directly, by device name

    // The bytes a filesystem at [offset, offset + size) lies in: the disk, or the logical volume.
    std::shared_ptr<BlockDevice> bytes_of(const detail::LogicalVolume* volume) const {
        if (volume == nullptr) {
            return device;
        }
        return std::make_shared<detail::VolumeDevice>(std::vector<std::shared_ptr<BlockDevice>>{device},
                                                      *volume);
    }

    Expected<std::unique_ptr<detail::FilesystemReader>>
    open_filesystem_at(std::uint64_t offset, std::uint64_t size, const detail::LogicalVolume* volume) {
        if (size == 0) {
            return make_error(Errc::unsupported, "empty partition");
        }
        auto bytes = bytes_of(volume);
        if (sandbox) {
            auto fs = detail::SandboxedFilesystem::open(worker_disk, std::move(bytes), offset, size, throttle,
                                                        worker_limits, volume);
            if (!fs) {
                return std::unexpected(fs.error());
            }
            return std::unique_ptr<detail::FilesystemReader>(std::move(*fs));
        }
        return detail::open_filesystem_reader(std::move(bytes), offset, size);
    }
    std::optional<std::vector<BlockExtent>> depth; // of the whole disk, once asked
    bool depth_unavailable = false;
    bool use_bitmap = false; // keys from the dirty bitmap (an export's point in time), not from layers
    std::optional<std::vector<BlockExtent>> dirty;

    // The dirty bitmap over the whole disk, asked for once; nullptr when it cannot be read.
    const std::vector<BlockExtent>* dirty_map() {
        if (!dirty) {
            auto map = device->dirty_blocks(0, device->size());
            if (!map) {
                spdlog::warn("cannot read the dirty bitmap ({}): every file is read", map.error().message);
                use_bitmap = false;
                return nullptr;
            }
            dirty = std::move(*map);
        }
        return &*dirty;
    }

    // The allocation depth of the whole disk, asked for once; nullptr when the export cannot tell.
    const std::vector<BlockExtent>* depth_map() {
        if (!depth && !depth_unavailable) {
            auto map = device->has_allocation_depth()
                           ? device->allocation_depth(0, device->size())
                           : Expected<std::vector<BlockExtent>>(std::vector<BlockExtent>{});
            if (map && !map->empty()) {
                depth = std::move(*map);
            } else {
                depth_unavailable = true;
                spdlog::debug("no allocation depth: block-level reuse is off for this image");
            }
        }
        return depth ? &*depth : nullptr;
    }
};

namespace {

// Calls range(disk_offset, length) for each stretch of the disk that holds the run's bytes: the run itself
// for a filesystem on the disk, its pieces through the volume's map for one in a logical volume.
template <typename F>
bool for_each_disk_range(const detail::DataRun& run, std::uint64_t fs_offset,
                         const detail::LogicalVolume* volume, F&& range) {
    if (volume == nullptr) {
        range(fs_offset + run.fs_offset, run.length);
        return true;
    }
    return detail::for_each_piece(
               *volume, fs_offset + run.fs_offset, run.length,
               [&](unsigned /*disk*/, std::uint64_t at, std::uint64_t length) -> Expected<void> {
                   range(at, length);
                   return {};
               })
        .has_value();
}

// Whether any byte of the file's data lies in a block the bitmap marks dirty (or cannot be placed).
bool touches_dirty_blocks(const detail::FsFile& file, std::uint64_t fs_offset,
                          const detail::LogicalVolume* volume, const std::vector<BlockExtent>& dirty) {
    bool touched = false;
    for (const auto& run : file.runs) {
        if (!run.sparse &&
            !for_each_disk_range(run, fs_offset, volume, [&](std::uint64_t at, std::uint64_t length) {
                touched = touched || detail::shallowest_layer(dirty, at, length) != 0;
            })) {
            return true;
        }
    }
    return touched;
}

// "blocks|<identity of the layers holding the data>|<sha256 of the runs as disk offsets>". A file in a
// logical volume is named by the disk offsets its runs map to, so a clone whose volume map is the
// template's shares the template's keys.
std::optional<std::string> block_key(const detail::FsFile& file, std::uint64_t fs_offset,
                                     const detail::LogicalVolume* volume,
                                     const std::vector<BlockExtent>& depth,
                                     const std::vector<std::string>& layer_identities) {
    if (!file.problem && file.size == 0) {
        return "blocks|empty"; // no bytes at all, in any image
    }
    if (file.problem || file.through_tsk || !file.resident.empty() || file.runs.empty()) {
        return std::nullopt; // data inside metadata records or decoded by TSK: no plain blocks to name
    }
    std::string runs = std::to_string(file.size) + ":" + std::to_string(file.initialized);
    std::uint32_t shallowest = 0;
    for (const auto& run : file.runs) {
        if (run.sparse) {
            runs += "|s" + std::to_string(run.length);
            continue;
        }
        const bool placed =
            for_each_disk_range(run, fs_offset, volume, [&](std::uint64_t at, std::uint64_t length) {
                runs += "|" + std::to_string(at) + "+" + std::to_string(length);
                const std::uint32_t layer = detail::shallowest_layer(depth, at, length);
                if (layer != 0 && (shallowest == 0 || layer < shallowest)) {
                    shallowest = layer;
                }
            });
        if (!placed) {
            return std::nullopt;
        }
    }
    // Depth n is layer n-1 (top = 1); unallocated everywhere reads as zeros in any layer: the bottom one.
    const std::size_t index = shallowest == 0
                                  ? layer_identities.size() - 1
                                  : std::min<std::size_t>(shallowest - 1, layer_identities.size() - 1);
    return "blocks|" + layer_identities[index] + "|" + sha256_hex(runs);
}

} // namespace

DirectImage::DirectImage(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
DirectImage::~DirectImage() {
    m_impl->opened.clear(); // the readers go before the export they read
    m_impl->device.reset();
    m_impl->server.reset();
}

Expected<std::unique_ptr<DirectImage>> DirectImage::serve(const ImageInfo& image,
                                                          const DirectOptions& options) {
    auto server =
        detail::QemuNbdServer::start(image, detail::QemuNbdOptions{options.snapshot, options.connections});
    if (!server) {
        return std::unexpected(server.error());
    }
    auto device = NbdDevice::connect_unix((*server)->socket_path(),
                                          NbdOptions{options.connections, "", options.throttle});
    if (!device) {
        // qemu-nbd listens before it has opened everything: a late refusal shows as a dropped connection.
        if (auto why = (*server)->exit_reason(std::chrono::seconds(10))) {
            return std::unexpected(*why);
        }
        return std::unexpected(device.error());
    }
    auto impl = std::make_unique<Impl>();
    impl->worker_disk.nbd_socket = (*server)->socket_path();
    impl->take_worker_options(options);
    impl->server = std::move(*server);
    impl->device = std::move(*device);
    return std::unique_ptr<DirectImage>(new DirectImage(std::move(impl)));
}

Expected<std::unique_ptr<DirectImage>> DirectImage::connect(const std::string& uri,
                                                            const DirectOptions& options) {
    auto device =
        NbdDevice::connect_uri(uri, NbdOptions{options.connections, options.dirty_bitmap, options.throttle});
    if (!device) {
        return std::unexpected(device.error());
    }
    auto impl = std::make_unique<Impl>();
    impl->device = std::move(*device);
    impl->use_bitmap = !options.dirty_bitmap.empty();
    impl->worker_disk.nbd_uri = uri;
    impl->take_worker_options(options);
    return std::unique_ptr<DirectImage>(new DirectImage(std::move(impl)));
}

std::uint64_t DirectImage::size() const noexcept {
    return m_impl->device->size();
}

NbdDevice& DirectImage::device() noexcept {
    return *m_impl->device;
}

const std::vector<std::string>& DirectImage::warnings() const noexcept {
    return m_impl->warnings;
}

namespace {

// A stretch that may hold a filesystem: a partition, the bare disk, or a logical volume.
struct Candidate {
    std::string device;
    std::uint64_t offset = 0; // in the disk, or in the volume
    std::uint64_t size = 0;
    std::string part_type;
    const detail::LogicalVolume* volume = nullptr;
};

std::vector<Candidate> candidates_of(const detail::DiskLayout& layout, std::uint64_t disk_size) {
    std::vector<Candidate> candidates;
    if (layout.table.kind == TableKind::none) {
        candidates.push_back({"/dev/sda", 0, disk_size, "", nullptr});
    }
    for (const auto& p : layout.table.partitions) {
        if (!p.extended) {
            candidates.push_back({"/dev/sda" + std::to_string(p.number), p.offset, p.size, p.type, nullptr});
        }
    }
    for (const auto& v : layout.volumes.volumes) {
        candidates.push_back({v.device(), 0, v.size, "", &v});
    }
    return candidates;
}

// What a stretch the direct readers refused holds, and whether the appliance may read it.
void describe_unread(DirectFilesystem& fs, BlockDevice& bytes, const Candidate& c) {
    if (c.volume != nullptr && !c.volume->unsupported.empty()) {
        fs.info.type = "unknown";
        fs.for_appliance = true;
        fs.info.not_scannable_reason = "the direct reader does not read " + c.volume->unsupported;
        return;
    }
    const std::string found = foreign_type(bytes, c.offset, c.size);
    fs.info.type = found == "empty" ? "unknown" : found;
    if (found == "swap") {
        fs.info.not_scannable_reason = "swap space";
    } else if (found == "crypto_LUKS") {
        fs.info.not_scannable_reason = "encrypted (LUKS), no key";
    } else if (found == "BitLocker") {
        fs.info.not_scannable_reason = "encrypted (BitLocker), no key";
    } else if (found == "empty" || c.part_type == k_bios_boot_type ||
               c.part_type == k_microsoft_reserved_type) {
        fs.info.not_scannable_reason = "no filesystem recognised";
    } else {
        fs.for_appliance = true; // btrfs, LVM the direct reader could not map, or something only it may know
        fs.info.not_scannable_reason = found == "unknown" ? "the direct reader recognises no filesystem here"
                                                          : "the direct reader does not read " + found;
    }
}

// A physical volume: its logical volumes are listed on their own, unless its group could not be read.
DirectFilesystem physical_volume(const Candidate& c, const detail::FoundPv& pv) {
    DirectFilesystem fs;
    fs.info.device = c.device;
    fs.info.type = "LVM2_member";
    fs.offset = c.offset;
    fs.size = c.size;
    if (pv.group.empty()) {
        fs.for_appliance = true;
        fs.info.not_scannable_reason = "the direct reader cannot read this LVM physical volume's metadata";
    } else {
        fs.info.not_scannable_reason = "LVM physical volume of volume group " + pv.group +
                                       " (its logical volumes are listed on their own)";
    }
    return fs;
}

} // namespace

Expected<std::vector<DirectFilesystem>> DirectImage::filesystems() {
    auto layout = m_impl->sandbox ? detail::read_disk_layout_in_worker(
                                        m_impl->worker_disk, m_impl->device->size(), m_impl->worker_limits)
                                  : detail::read_disk_layout(*m_impl->device);
    if (!layout) {
        return std::unexpected(layout.error());
    }
    m_impl->warnings = layout->table.warnings;
    std::ranges::copy(layout->volumes.warnings, std::back_inserter(m_impl->warnings));
    m_impl->volumes.clear();
    std::vector<DirectFilesystem> result;
    for (const auto& c : candidates_of(*layout, m_impl->device->size())) {
        const auto pv = std::ranges::find_if(layout->volumes.pvs, [&](const detail::FoundPv& found) {
            return c.volume == nullptr && found.disk == 0 && found.offset == c.offset;
        });
        if (pv != layout->volumes.pvs.end()) {
            result.push_back(physical_volume(c, *pv));
            continue;
        }
        DirectFilesystem fs;
        fs.info.device = c.device;
        fs.offset = c.offset;
        fs.size = c.size;
        const bool mapped = c.volume == nullptr || c.volume->unsupported.empty();
        auto opened = mapped ? m_impl->open_filesystem_at(c.offset, c.size, c.volume)
                             : make_error(Errc::unsupported, c.volume->unsupported);
        if (!opened) {
            describe_unread(fs, *m_impl->bytes_of(mapped ? c.volume : nullptr), c);
            result.push_back(std::move(fs));
            continue;
        }
        fs.readable = true;
        fs.info.type = (*opened)->type();
        fs.info.uuid = (*opened)->uuid();
        fs.info.label = (*opened)->label();
        m_impl->opened[c.device] = std::move(*opened);
        if (c.volume != nullptr) {
            m_impl->volumes.emplace(c.device, *c.volume);
        }
        result.push_back(std::move(fs));
    }
    return result;
}

std::vector<OsInfo> DirectImage::inspect(const std::vector<DirectFilesystem>& filesystems) {
    std::vector<OsInfo> systems;
    for (const auto& fs : filesystems) {
        const auto opened = m_impl->opened.find(fs.info.device);
        if (!fs.readable || opened == m_impl->opened.end()) {
            continue;
        }
        detail::FilesystemReader& reader = *opened->second;
        auto release = reader.read_small_file("/etc/os-release", k_inspection_file_limit);
        if (!release) {
            release = reader.read_small_file("/usr/lib/os-release", k_inspection_file_limit);
        }
        if (release) {
            auto fields = os_release_fields(*release);
            OsInfo os;
            os.root = fs.info.device;
            os.type = "linux";
            os.distro = fields["ID"];
            os.product_name = fields.contains("PRETTY_NAME") ? fields["PRETTY_NAME"] : fields["NAME"];
            os.version = fields["VERSION_ID"];
            if (auto hostname = reader.read_small_file("/etc/hostname", k_inspection_file_limit)) {
                os.hostname = first_line_of(*hostname);
            }
            systems.push_back(std::move(os));
        } else if (reader.is_folder("/Windows/System32")) {
            systems.push_back(OsInfo{fs.info.device, "windows", "windows", "", "", ""});
        }
    }
    return systems;
}

Expected<std::unique_ptr<FileSource>>
DirectImage::open_filesystem(const DirectFilesystem& fs, const SourceOptions& options, WantBytes want,
                             const std::vector<std::string>& layer_identities) {
    const auto opened = m_impl->opened.find(fs.info.device);
    if (!fs.readable || opened == m_impl->opened.end()) {
        return make_error(Errc::unsupported, "the direct reader cannot read " + fs.info.device);
    }
    detail::FilesystemReader& reader = *opened->second;
    const auto start = std::chrono::steady_clock::now();
    auto files = reader.list();
    if (!files) {
        return std::unexpected(files.error());
    }
    const auto listed_at = std::chrono::steady_clock::now();
    const std::vector<BlockExtent>* dirty =
        layer_identities.empty() || !m_impl->use_bitmap ? nullptr : m_impl->dirty_map();
    const std::vector<BlockExtent>* depth =
        layer_identities.empty() || m_impl->use_bitmap ? nullptr : m_impl->depth_map();
    spdlog::debug("{}: {} files listed in {:.3f} s, block map in {:.3f} s", fs.info.device, files->size(),
                  std::chrono::duration<double>(listed_at - start).count(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - listed_at).count());
    const auto in_volume = m_impl->volumes.find(fs.info.device);
    const detail::LogicalVolume* volume = in_volume == m_impl->volumes.end() ? nullptr : &in_volume->second;
    std::vector<detail::ListedFile> listed;
    std::unordered_map<std::string, detail::FsFile> by_path;
    listed.reserve(files->size());
    for (auto& file : *files) {
        detail::ListedFile entry;
        entry.path = file.path;
        entry.size = file.size;
        entry.device =
            (std::uint64_t{file.attr_type} << 16U) | file.attr_id; // NTFS streams are separate data
        entry.links = file.links;
        entry.stamp = file.stamp;
        entry.problem = file.problem;
        if (depth != nullptr) {
            entry.block_key = block_key(file, fs.offset, volume, *depth, layer_identities);
        } else if (dirty != nullptr && !touches_dirty_blocks(file, fs.offset, volume, *dirty)) {
            // Clean since the bitmap started: the bytes are as they were at the scan that recorded them.
            entry.block_key = block_key(file, fs.offset, volume, {}, layer_identities);
        }
        // A damaged folder naming one file twice: never read the wrong one.
        if (by_path.contains(file.path)) {
            entry.problem = Error{Errc::corrupt, "the folder lists this name twice"};
        } else {
            by_path.emplace(file.path, std::move(file));
        }
        listed.push_back(std::move(entry));
    }
    return std::make_unique<detail::ListedSource>(std::move(listed), std::move(want),
                                                  std::make_unique<TskReads>(reader, std::move(by_path)),
                                                  options, ReadOrder::random);
}

} // namespace coldscan::disk
