#include "coldscan/disk/direct_image.hpp"

#include "coldscan/common/sha256.hpp"
#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/disk/partition_table.hpp"
#include "extent_map.hpp"
#include "filesystem_reader.hpp"
#include "listed_source.hpp"
#include "qemu_file_view.hpp"
#include "qemu_nbd_server.hpp"
#include "sandboxed_filesystem.hpp"

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
    if (has_at(head, 0, "LUKS\xba\xbe")) {
        return "crypto_LUKS";
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

    Expected<std::unique_ptr<detail::FilesystemReader>> open_filesystem_at(std::uint64_t offset,
                                                                           std::uint64_t size) {
        if (size == 0) {
            return make_error(Errc::unsupported, "empty partition");
        }
        if (sandbox) {
            auto fs =
                detail::SandboxedFilesystem::open(worker_disk, device, offset, size, throttle, worker_limits);
            if (!fs) {
                return std::unexpected(fs.error());
            }
            return std::unique_ptr<detail::FilesystemReader>(std::move(*fs));
        }
        return detail::open_filesystem_reader(device, offset, size);
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

// Whether any byte of the file's data lies in a block the bitmap marks dirty.
bool touches_dirty_blocks(const detail::FsFile& file, std::uint64_t fs_offset,
                          const std::vector<BlockExtent>& dirty) {
    for (const auto& run : file.runs) {
        if (!run.sparse && detail::shallowest_layer(dirty, fs_offset + run.fs_offset, run.length) != 0) {
            return true;
        }
    }
    return false;
}

// "blocks|<identity of the layers holding the data>|<sha256 of the runs as disk offsets>".
std::optional<std::string> block_key(const detail::FsFile& file, std::uint64_t fs_offset,
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
        const std::uint64_t at = fs_offset + run.fs_offset;
        runs += "|" + std::to_string(at) + "+" + std::to_string(run.length);
        const std::uint32_t layer = detail::shallowest_layer(depth, at, run.length);
        if (layer != 0 && (shallowest == 0 || layer < shallowest)) {
            shallowest = layer;
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

Expected<std::vector<DirectFilesystem>> DirectImage::filesystems() {
    auto table = m_impl->sandbox ? detail::read_partition_table_in_worker(
                                       m_impl->worker_disk, m_impl->device->size(), m_impl->worker_limits)
                                 : read_partition_table(*m_impl->device);
    if (!table) {
        return std::unexpected(table.error());
    }
    m_impl->warnings = table->warnings;
    struct Candidate {
        std::string device;
        std::uint64_t offset;
        std::uint64_t size;
        std::string part_type;
    };
    std::vector<Candidate> candidates;
    if (table->kind == TableKind::none) {
        candidates.push_back({"/dev/sda", 0, m_impl->device->size(), ""});
    }
    for (const auto& p : table->partitions) {
        if (!p.extended) {
            candidates.push_back({"/dev/sda" + std::to_string(p.number), p.offset, p.size, p.type});
        }
    }
    std::vector<DirectFilesystem> result;
    for (const auto& c : candidates) {
        DirectFilesystem fs;
        fs.info.device = c.device;
        fs.offset = c.offset;
        fs.size = c.size;
        auto opened = m_impl->open_filesystem_at(c.offset, c.size);
        if (opened) {
            fs.readable = true;
            fs.info.type = (*opened)->type();
            fs.info.uuid = (*opened)->uuid();
            fs.info.label = (*opened)->label();
            m_impl->opened[c.device] = std::move(*opened);
            result.push_back(std::move(fs));
            continue;
        }
        const std::string found = foreign_type(*m_impl->device, c.offset, c.size);
        fs.info.type = found == "empty" ? "unknown" : found;
        if (found == "swap") {
            fs.info.not_scannable_reason = "swap space";
        } else if (found == "crypto_LUKS") {
            fs.info.not_scannable_reason = "encrypted (LUKS), no key";
        } else if (found == "empty" || c.part_type == k_bios_boot_type ||
                   c.part_type == k_microsoft_reserved_type) {
            fs.info.not_scannable_reason = "no filesystem recognised";
        } else {
            fs.for_appliance = true; // LVM, XFS, btrfs, or something only the appliance may know
            fs.info.not_scannable_reason = found == "unknown"
                                               ? "the direct reader recognises no filesystem here"
                                               : "the direct reader does not read " + found;
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
            entry.block_key = block_key(file, fs.offset, *depth, layer_identities);
        } else if (dirty != nullptr && !touches_dirty_blocks(file, fs.offset, *dirty)) {
            // Clean since the bitmap started: the bytes are as they were at the scan that recorded them.
            entry.block_key = block_key(file, fs.offset, {}, layer_identities);
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
