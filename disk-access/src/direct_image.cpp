#include "coldscan/disk/direct_image.hpp"

#include "block_keys.hpp"
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

// As libguestfs names the VM's disks: /dev/sda ... /dev/sdz, /dev/sdaa, ...
std::string disk_device(unsigned index) {
    std::string letters(1, static_cast<char>('a' + index % 26));
    if (index >= 26) {
        letters.insert(letters.begin(), static_cast<char>('a' + index / 26 - 1));
    }
    return "/dev/sd" + letters;
}

// A stretch that may hold a filesystem: a partition, the bare disk, or a logical volume.
struct Candidate {
    std::string device;
    unsigned disk = 0;
    std::uint64_t offset = 0; // in the disk, or in the volume
    std::uint64_t size = 0;
    std::string part_type;
    const detail::LogicalVolume* volume = nullptr;
};

std::vector<Candidate> candidates_of(const detail::DiskLayout& layout,
                                     const std::vector<std::uint64_t>& sizes) {
    std::vector<Candidate> candidates;
    for (unsigned disk = 0; disk < layout.tables.size(); ++disk) {
        const auto& table = layout.tables[disk];
        if (!table) {
            continue; // reported on its own
        }
        if (table->kind == TableKind::none) {
            candidates.push_back({disk_device(disk), disk, 0, sizes[disk], "", nullptr});
        }
        for (const auto& p : table->partitions) {
            if (!p.extended) {
                candidates.push_back(
                    {disk_device(disk) + std::to_string(p.number), disk, p.offset, p.size, p.type, nullptr});
            }
        }
    }
    for (const auto& v : layout.volumes.volumes) {
        candidates.push_back({v.device(), 0, 0, v.size, "", &v});
    }
    return candidates;
}

// What a stretch the direct readers refused holds, and whether the appliance may read it.
void describe_unread(DirectFilesystem& fs, BlockDevice& bytes, const Candidate& c) {
    if (c.volume != nullptr && c.volume->container) {
        fs.info.type = "LVM2_thin_pool";
        fs.info.not_scannable_reason = c.volume->unsupported; // no files of its own: skipped, as a PV is
        return;
    }
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
    } else if (auto encrypted = encrypted_reason(found)) {
        fs.info.not_scannable_reason = *encrypted;
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
    fs.disk = c.disk;
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

// One disk of the VM: its export and what was asked of it once.
struct DiskExport {
    std::unique_ptr<detail::QemuNbdServer> server; // none for an export made by someone else
    std::shared_ptr<NbdDevice> device;
    detail::WorkerDisk worker_disk; // where a filesystem worker connects
    std::optional<std::vector<BlockExtent>> depth;
    bool depth_unavailable = false;
    std::optional<std::vector<BlockExtent>> dirty;
    bool dirty_unavailable = false;

    // The allocation depth of the whole disk, asked once; nullptr when the export cannot tell.
    const std::vector<BlockExtent>* depth_map() {
        if (!depth && !depth_unavailable) {
            auto map = device->has_allocation_depth()
                           ? device->allocation_depth(0, device->size())
                           : Expected<std::vector<BlockExtent>>(std::vector<BlockExtent>{});
            if (map && !map->empty()) {
                depth = std::move(*map);
            } else {
                depth_unavailable = true;
                spdlog::debug("no allocation depth: block-level reuse is off for this disk");
            }
        }
        return depth ? &*depth : nullptr;
    }

    // The dirty bitmap over the whole disk, asked once; nullptr when it cannot be read.
    const std::vector<BlockExtent>* dirty_map() {
        if (!dirty && !dirty_unavailable) {
            auto map = device->dirty_blocks(0, device->size());
            if (!map) {
                spdlog::warn("cannot read the dirty bitmap ({}): every file is read", map.error().message);
                dirty_unavailable = true;
                return nullptr;
            }
            dirty = std::move(*map);
        }
        return dirty ? &*dirty : nullptr;
    }
};

struct DirectImage::Impl {
    std::vector<DiskExport> disks; // the VM's disks, in order: /dev/sda, /dev/sdb, ...
    std::vector<std::string> warnings;
    std::map<std::string, std::unique_ptr<detail::FilesystemReader>> opened; // by device name
    std::map<std::string, detail::LogicalVolume> volumes; // the LVs read directly, by device
    bool sandbox = false;
    bool use_bitmap = false;                // keys from the dirty bitmap (an export's point in time)
    std::shared_ptr<ReadThrottle> throttle; // charged for the workers' own reads
    detail::WorkerLimits worker_limits;

    // What both ways of opening an image take from the options for the filesystem workers.
    void take_worker_options(const DirectOptions& options) {
        sandbox = options.sandbox;
        throttle = options.throttle;
        worker_limits.answer_within = options.stall_timeout;
    }

    [[nodiscard]] std::vector<detail::WorkerDisk> worker_disks() const {
        std::vector<detail::WorkerDisk> out;
        for (const auto& d : disks) {
            out.push_back(d.worker_disk);
        }
        return out;
    }
    [[nodiscard]] std::vector<std::uint64_t> disk_sizes() const {
        std::vector<std::uint64_t> out;
        for (const auto& d : disks) {
            out.push_back(d.device->size());
        }
        return out;
    }

    // The bytes a filesystem lies in: its disk, or the logical volume over the disks.
    [[nodiscard]] std::shared_ptr<BlockDevice> bytes_of(unsigned disk,
                                                        const detail::LogicalVolume* volume) const {
        if (volume == nullptr) {
            return disks.at(disk).device;
        }
        std::vector<std::shared_ptr<BlockDevice>> all;
        for (const auto& d : disks) {
            all.push_back(d.device);
        }
        return std::make_shared<detail::VolumeDevice>(std::move(all), *volume);
    }

    Expected<std::unique_ptr<detail::FilesystemReader>>
    open_filesystem_at(unsigned disk, std::uint64_t offset, std::uint64_t size,
                       const detail::LogicalVolume* volume) {
        if (size == 0) {
            return make_error(Errc::unsupported, "empty partition");
        }
        auto bytes = bytes_of(disk, volume);
        if (sandbox) {
            auto fs = detail::SandboxedFilesystem::open(worker_disks(), disk, std::move(bytes), offset, size,
                                                        throttle, worker_limits, volume);
            if (!fs) {
                return std::unexpected(fs.error());
            }
            return std::unique_ptr<detail::FilesystemReader>(std::move(*fs));
        }
        return detail::open_filesystem_reader(std::move(bytes), offset, size);
    }

    Expected<detail::DiskLayout> layout() {
        if (sandbox) {
            return detail::read_disk_layout_in_worker(worker_disks(), disk_sizes(), worker_limits);
        }
        std::vector<BlockDevice*> raw;
        for (const auto& d : disks) {
            raw.push_back(d.device.get());
        }
        return detail::read_disk_layout(raw);
    }

    // Opens the filesystem a candidate holds, or says why not and whether the appliance may read it.
    DirectFilesystem open_candidate(const Candidate& c);

    // Each disk's map and layer identities for block keys; empty when no keys are made.
    std::vector<detail::DiskBlockMap> block_maps(const std::vector<std::vector<std::string>>& disk_layers) {
        std::vector<detail::DiskBlockMap> maps;
        for (std::size_t i = 0; i < disks.size() && i < disk_layers.size(); ++i) {
            if (disk_layers[i].empty()) {
                maps.emplace_back();
                continue;
            }
            maps.push_back({use_bitmap ? disks[i].dirty_map() : disks[i].depth_map(), disk_layers[i]});
            if (maps.back().map == nullptr) {
                maps.back().layers.clear(); // no map: no keys (a bitmap that failed, no depth)
            }
        }
        return maps;
    }
};

DirectFilesystem DirectImage::Impl::open_candidate(const Candidate& c) {
    DirectFilesystem fs;
    fs.info.device = c.device;
    fs.disk = c.disk;
    fs.offset = c.offset;
    fs.size = c.size;
    const bool mapped = c.volume == nullptr || c.volume->unsupported.empty();
    auto reader = mapped ? open_filesystem_at(c.disk, c.offset, c.size, c.volume)
                         : make_error(Errc::unsupported, c.volume->unsupported);
    if (!reader) {
        describe_unread(fs, *bytes_of(c.disk, mapped ? c.volume : nullptr), c);
        return fs;
    }
    fs.readable = true;
    fs.info.type = (*reader)->type();
    fs.info.uuid = (*reader)->uuid();
    fs.info.label = (*reader)->label();
    opened[c.device] = std::move(*reader);
    if (c.volume != nullptr) {
        volumes.emplace(c.device, *c.volume);
    }
    return fs;
}

DirectImage::DirectImage(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
DirectImage::~DirectImage() {
    m_impl->opened.clear(); // the readers go before the exports they read
    m_impl->disks.clear();
}

namespace {

// One disk served read-only by our own qemu-nbd. Errors: as QemuNbdServer and NbdDevice.
Expected<DiskExport> serve_disk(const ImageInfo& image, const DirectOptions& options) {
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
    DiskExport disk;
    disk.worker_disk.nbd_socket = (*server)->socket_path();
    disk.server = std::move(*server);
    disk.device = std::move(*device);
    return disk;
}

} // namespace

Expected<std::unique_ptr<DirectImage>> DirectImage::serve(const std::vector<ImageInfo>& disks,
                                                          const DirectOptions& options) {
    if (disks.empty()) {
        return make_error(Errc::invalid_argument, "a VM without disks");
    }
    auto impl = std::make_unique<Impl>();
    impl->take_worker_options(options);
    for (const auto& image : disks) {
        auto disk = serve_disk(image, options);
        if (!disk) {
            return std::unexpected(disks.size() == 1 ? disk.error()
                                                     : Error{disk.error().code, image.path.string() + ": " +
                                                                                    disk.error().message});
        }
        impl->disks.push_back(std::move(*disk));
    }
    return std::unique_ptr<DirectImage>(new DirectImage(std::move(impl)));
}

Expected<std::unique_ptr<DirectImage>> DirectImage::serve(const ImageInfo& image,
                                                          const DirectOptions& options) {
    return serve(std::vector<ImageInfo>{image}, options);
}

Expected<std::unique_ptr<DirectImage>> DirectImage::connect(const std::string& uri,
                                                            const DirectOptions& options) {
    auto device =
        NbdDevice::connect_uri(uri, NbdOptions{options.connections, options.dirty_bitmap, options.throttle});
    if (!device) {
        return std::unexpected(device.error());
    }
    auto impl = std::make_unique<Impl>();
    DiskExport disk;
    disk.device = std::move(*device);
    disk.worker_disk.nbd_uri = uri;
    impl->disks.push_back(std::move(disk));
    impl->use_bitmap = !options.dirty_bitmap.empty();
    impl->take_worker_options(options);
    return std::unique_ptr<DirectImage>(new DirectImage(std::move(impl)));
}

std::uint64_t DirectImage::size() const noexcept {
    return m_impl->disks.front().device->size();
}

std::size_t DirectImage::disk_count() const noexcept {
    return m_impl->disks.size();
}

const std::vector<std::string>& DirectImage::warnings() const noexcept {
    return m_impl->warnings;
}

namespace {

// A disk of several whose partition table cannot be used: its own entry (the others are still read).
DirectFilesystem unusable_disk(unsigned disk, const Error& why) {
    DirectFilesystem fs;
    fs.info.device = disk_device(disk);
    fs.disk = disk;
    fs.info.type = "unknown";
    fs.for_appliance = true;
    fs.info.not_scannable_reason = "its partition table cannot be used: " + why.message;
    return fs;
}

} // namespace

Expected<std::vector<DirectFilesystem>> DirectImage::filesystems() {
    auto layout = m_impl->layout();
    if (!layout) {
        return std::unexpected(layout.error());
    }
    const bool one_disk = m_impl->disks.size() == 1;
    if (one_disk && !layout->tables.front()) {
        return std::unexpected(layout->tables.front().error()); // nothing of this disk can be read
    }
    std::vector<DirectFilesystem> result;
    m_impl->warnings.clear();
    for (unsigned disk = 0; disk < layout->tables.size(); ++disk) {
        if (!layout->tables[disk]) {
            result.push_back(unusable_disk(disk, layout->tables[disk].error()));
            continue;
        }
        for (const auto& warning : layout->tables[disk]->warnings) {
            m_impl->warnings.push_back(one_disk ? warning : disk_device(disk) + ": " + warning);
        }
    }
    std::ranges::copy(layout->volumes.warnings, std::back_inserter(m_impl->warnings));
    m_impl->volumes.clear();
    for (const auto& c : candidates_of(*layout, m_impl->disk_sizes())) {
        const auto pv = std::ranges::find_if(layout->volumes.pvs, [&](const detail::FoundPv& found) {
            return c.volume == nullptr && found.disk == c.disk && found.offset == c.offset;
        });
        if (pv != layout->volumes.pvs.end()) {
            result.push_back(physical_volume(c, *pv));
            continue;
        }
        result.push_back(m_impl->open_candidate(c));
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
                             const std::vector<std::vector<std::string>>& disk_layers) {
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
    const auto maps = m_impl->block_maps(disk_layers);
    spdlog::debug("{}: {} files listed in {:.3f} s, block maps in {:.3f} s", fs.info.device, files->size(),
                  std::chrono::duration<double>(listed_at - start).count(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - listed_at).count());
    const auto in_volume = m_impl->volumes.find(fs.info.device);
    const detail::FilesystemPlace place{fs.disk, fs.offset,
                                        in_volume == m_impl->volumes.end() ? nullptr : &in_volume->second};
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
        // With a dirty bitmap, only files clean since it started keep their key: their bytes are as they
        // were at the scan that recorded them.
        if (!maps.empty() && (!m_impl->use_bitmap || !detail::touches_dirty_blocks(file, place, maps))) {
            entry.block_key = detail::block_key(file, place, maps);
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
