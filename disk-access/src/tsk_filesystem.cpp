#include "tsk_filesystem.hpp"

#include "fs_names.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <tsk/libtsk.h>
#include <unordered_set>

namespace coldscan::disk::detail {

namespace {

constexpr TSK_INUM_T k_first_user_mft_entry = 16; // NTFS entries below are the volume's metadata files
constexpr std::string_view k_fat_label_suffix = "(Volume Label Entry)";

// TSK's view of a window of our block device. TSK_IMG_INFO must come first: TSK hands back its address.
struct ExternalImage {
    TSK_IMG_INFO info;
    BlockDevice* device;
    std::uint64_t base;
};

ssize_t image_read(TSK_IMG_INFO* img, TSK_OFF_T off, char* buf, size_t len) {
    auto* self = reinterpret_cast<ExternalImage*>(img);
    if (off < 0 || off >= img->size) {
        return 0;
    }
    const auto n =
        static_cast<std::size_t>(std::min<std::uint64_t>(len, static_cast<std::uint64_t>(img->size - off)));
    auto ok = self->device->read(self->base + static_cast<std::uint64_t>(off),
                                 std::span(reinterpret_cast<std::byte*>(buf), n));
    if (!ok) {
        tsk_error_reset();
        tsk_error_set_errno(TSK_ERR_IMG_READ);
        tsk_error_set_errstr("%s", ok.error().message.c_str());
        return -1;
    }
    return static_cast<ssize_t>(n);
}

void image_close(TSK_IMG_INFO* /*img*/) {} // owned by TskFilesystem::Impl

void image_stat(TSK_IMG_INFO* /*img*/, FILE* out) {
    std::fputs("coldscan block device window\n", out);
}

std::string tsk_message(std::string_view what) {
    const char* said = tsk_error_get();
    std::string message =
        std::string(what) + ": " + (said != nullptr && *said != '\0' ? said : "unknown TSK error");
    tsk_error_reset();
    return message;
}

std::string type_name(TSK_FS_TYPE_ENUM type) {
    if (type == TSK_FS_TYPE_EXFAT) {
        return "exfat";
    }
    if (TSK_FS_TYPE_ISFAT(type)) {
        return "vfat";
    }
    if (TSK_FS_TYPE_ISNTFS(type)) {
        return "ntfs";
    }
    if (type == TSK_FS_TYPE_EXT2) {
        return "ext2";
    }
    if (type == TSK_FS_TYPE_EXT3) {
        return "ext3";
    }
    if (TSK_FS_TYPE_ISEXT(type)) {
        return "ext4";
    }
    if (TSK_FS_TYPE_ISHFS(type)) {
        return "hfsplus";
    }
    if (TSK_FS_TYPE_ISISO9660(type)) {
        return "iso9660";
    }
    const char* name = tsk_fs_type_toname(type);
    return name != nullptr ? name : "unknown";
}

// The filesystem id as the usual tools print it: a UUID for ext and HFS+, the NTFS serial and FAT volume id
// as numbers (stored little-endian).
std::string uuid_text(const TSK_FS_INFO& fs) {
    const std::size_t n = std::min<std::size_t>(fs.fs_id_used, TSK_FS_INFO_FS_ID_LEN);
    std::string hex;
    char two[3];
    if (TSK_FS_TYPE_ISNTFS(fs.ftype) || TSK_FS_TYPE_ISFAT(fs.ftype) || fs.ftype == TSK_FS_TYPE_EXFAT) {
        for (std::size_t i = n; i-- > 0;) {
            std::snprintf(two, sizeof two, "%02X", fs.fs_id[i]);
            hex += two;
        }
        if (n == 4) {
            hex.insert(4, "-");
        }
        return hex;
    }
    for (std::size_t i = 0; i < n; ++i) {
        std::snprintf(two, sizeof two, "%02x", fs.fs_id[i]);
        hex += two;
    }
    if (n == 16) {
        for (const std::size_t at : {20U, 16U, 12U, 8U}) {
            hex.insert(at, "-");
        }
    }
    return hex;
}

// Where the attribute's bytes lie, or through_tsk when only TSK can decode them.
// filler_is_hole: TSK marks ext4 holes as FILLER runs (it reads them as zeros); elsewhere a filler is a run
// TSK could not place, left to TSK.
void describe(const TSK_FS_ATTR& attr, unsigned block_size, bool filler_is_hole, FsFile& file) {
    file.size = attr.size > 0 ? static_cast<std::uint64_t>(attr.size) : 0;
    file.attr_type = static_cast<std::uint32_t>(attr.type);
    file.attr_id = attr.id;
    if ((attr.flags & (TSK_FS_ATTR_COMP | TSK_FS_ATTR_ENC)) != 0) {
        file.through_tsk = true;
        return;
    }
    if ((attr.flags & TSK_FS_ATTR_RES) != 0) {
        if (attr.rd.buf == nullptr || attr.rd.buf_size < file.size) {
            file.through_tsk = true;
            return;
        }
        file.resident.assign(reinterpret_cast<const std::byte*>(attr.rd.buf),
                             reinterpret_cast<const std::byte*>(attr.rd.buf) + file.size);
        return;
    }
    if ((attr.flags & TSK_FS_ATTR_NONRES) == 0 || attr.nrd.skiplen != 0) {
        file.through_tsk = true;
        return;
    }
    file.initialized = attr.nrd.initsize > 0 ? std::min<std::uint64_t>(attr.nrd.initsize, file.size) : 0;
    std::uint64_t covered = 0;
    const auto add_hole = [&file, &covered](std::uint64_t until) {
        if (!file.runs.empty() && file.runs.back().sparse) {
            file.runs.back().length += until - covered;
        } else {
            file.runs.push_back(DataRun{covered, 0, until - covered, true});
        }
        covered = until;
    };
    for (const TSK_FS_ATTR_RUN* run = attr.nrd.run; run != nullptr && covered < file.size; run = run->next) {
        const std::uint64_t run_start = run->offset * block_size;
        const bool filler = (run->flags & TSK_FS_ATTR_RUN_FLAG_FILLER) != 0;
        if ((filler && !filler_is_hole) || (run->flags & TSK_FS_ATTR_RUN_FLAG_ENCRYPTED) != 0 ||
            run_start < covered) {
            file.runs.clear();
            file.through_tsk = true; // overlapping, or a run TSK could not place: let TSK decide
            return;
        }
        if (run_start > covered) {
            add_hole(std::min<std::uint64_t>(run_start, file.size)); // ext4 leaves holes out of its runs
            if (covered >= file.size) {
                break;
            }
        }
        const std::uint64_t length = std::min<std::uint64_t>(run->len * block_size, file.size - covered);
        const bool sparse = (run->flags & TSK_FS_ATTR_RUN_FLAG_SPARSE) != 0 || filler;
        const std::uint64_t fs_offset = sparse ? 0 : run->addr * block_size;
        if (!file.runs.empty() && !sparse && !file.runs.back().sparse &&
            file.runs.back().fs_offset + file.runs.back().length == fs_offset) {
            file.runs.back().length += length;
        } else if (length > 0) {
            file.runs.push_back(DataRun{covered, fs_offset, length, sparse});
        }
        covered += length;
    }
    if (covered < file.size) {
        add_hole(file.size); // the file ends in a hole
    }
}

// TSK's recursive walk moves on, silently, past a folder it cannot load (damaged, in a loop, or nested past
// its depth limit): the walk notes every folder it meets and every folder it lists ("." included, which
// every listed folder has), so a folder met but never listed becomes an error entry instead of a silent gap.
struct Walk {
    TSK_FS_INFO* fs;
    bool ntfs;
    std::vector<FsFile>* files;
    std::vector<std::string> folders_met;           // as TSK names a folder's entries' parent: "a/b/"
    std::unordered_set<std::string> folders_listed; // the same form; "" is the root
};

FsFile identity(const TSK_FS_META& meta, std::string path) {
    FsFile file;
    file.path = std::move(path);
    file.inode = meta.addr;
    file.links = meta.nlink > 0 ? static_cast<std::uint32_t>(meta.nlink) : 1;
    file.mtime = meta.mtime;
    file.stamp = FileStamp{meta.addr, meta.seq,
                           static_cast<std::int64_t>(meta.mtime) * 1'000'000'000 + meta.mtime_nano,
                           static_cast<std::int64_t>(meta.ctime) * 1'000'000'000 + meta.ctime_nano};
    return file;
}

TSK_WALK_RET_ENUM on_entry(TSK_FS_FILE* entry, const char* parent, void* ptr) {
    auto& walk = *static_cast<Walk*>(ptr);
    const std::string_view folder = parent != nullptr ? parent : "";
    walk.folders_listed.emplace(folder);
    if (entry->name == nullptr || entry->name->name == nullptr) {
        return TSK_WALK_CONT;
    }
    const std::string_view name = entry->name->name;
    if (name == "." || name == "..") {
        return TSK_WALK_CONT;
    }
    const std::string path = "/" + std::string(folder) + std::string(name);
    if (entry->meta == nullptr) { // a name whose inode TSK could not load
        FsFile file;
        file.path = path;
        file.inode = entry->name->meta_addr;
        file.problem = Error{Errc::corrupt, tsk_message("the filesystem reader cannot read its inode")};
        walk.files->push_back(std::move(file));
        return TSK_WALK_CONT;
    }
    if (walk.ntfs && (entry->meta->addr < k_first_user_mft_entry || folder.starts_with("$Extend/"))) {
        return TSK_WALK_CONT;
    }
    const TSK_FS_META& meta = *entry->meta;
    if (meta.type == TSK_FS_META_TYPE_DIR) {
        walk.folders_met.push_back(std::string(folder) + std::string(name) + "/");
    }
    const bool regular = meta.type == TSK_FS_META_TYPE_REG;
    if (walk.ntfs) {
        // Every $DATA attribute: the unnamed one is the file, named ones are alternate data streams (which a
        // folder may carry too).
        const int count = tsk_fs_file_attr_getsize(entry);
        for (int i = 0; i < count; ++i) {
            const TSK_FS_ATTR* attr = tsk_fs_file_attr_get_idx(entry, i);
            if (attr == nullptr || attr->type != TSK_FS_ATTR_TYPE_NTFS_DATA) {
                continue;
            }
            const bool named = attr->name != nullptr && attr->name[0] != '\0';
            if (!named && !regular) {
                continue;
            }
            FsFile file = identity(meta, named ? path + ":" + attr->name : path);
            describe(*attr, walk.fs->block_size, TSK_FS_TYPE_ISEXT(walk.fs->ftype) != 0, file);
            walk.files->push_back(std::move(file));
        }
        return TSK_WALK_CONT;
    }
    if (!regular) {
        return TSK_WALK_CONT;
    }
    // TSK lists a FAT volume's label as an empty file in the root named "LABEL (Volume Label Entry)".
    if (TSK_FS_TYPE_ISFAT(walk.fs->ftype) && folder.empty() && meta.size == 0 &&
        name.ends_with(k_fat_label_suffix)) {
        return TSK_WALK_CONT;
    }
    FsFile file = identity(meta, path);
    if (const TSK_FS_ATTR* attr = tsk_fs_file_attr_get(entry); attr != nullptr) {
        describe(*attr, walk.fs->block_size, TSK_FS_TYPE_ISEXT(walk.fs->ftype) != 0, file);
        file.initialized = file.size; // only NTFS has an initialised size short of the file's
    } else if (meta.size == 0) {
        file.size = 0; // an empty file has no data attribute on some filesystems
    } else {
        file.size = static_cast<std::uint64_t>(std::max<TSK_OFF_T>(meta.size, 0));
        file.problem = Error{Errc::corrupt, tsk_message("the filesystem reader cannot locate its data")};
    }
    walk.files->push_back(std::move(file));
    return TSK_WALK_CONT;
}

// The volume label from the filesystem's own structures.
std::string volume_label(TSK_FS_INFO* fs, BlockDevice& device, std::uint64_t base) {
    if (TSK_FS_TYPE_ISEXT(fs->ftype)) {
        std::string name(16, '\0'); // s_volume_name, in the superblock at byte 1024
        if (device.read(base + 1024 + 120, std::as_writable_bytes(std::span(name)))) {
            return trimmed(name);
        }
        return "";
    }
    if (TSK_FS_TYPE_ISFAT(fs->ftype)) {
        std::string name(11, ' '); // in the boot sector: FAT12/16 at byte 43, FAT32 at byte 71
        const std::uint64_t at = fs->ftype == TSK_FS_TYPE_FAT32 ? 71 : 43;
        if (device.read(base + at, std::as_writable_bytes(std::span(name)))) {
            name = trimmed(name);
            return name == "NO NAME" ? "" : name;
        }
        return "";
    }
    if (TSK_FS_TYPE_ISNTFS(fs->ftype)) {
        constexpr TSK_INUM_T k_volume_entry = 3; // $Volume holds $VOLUME_NAME
        TSK_FS_FILE* volume = tsk_fs_file_open_meta(fs, nullptr, k_volume_entry);
        std::string label;
        if (volume != nullptr) {
            const TSK_FS_ATTR* name = tsk_fs_file_attr_get_type(volume, TSK_FS_ATTR_TYPE_NTFS_VNAME, 0, 0);
            if (name != nullptr && (name->flags & TSK_FS_ATTR_RES) != 0 && name->rd.buf != nullptr &&
                name->size > 0 && static_cast<std::size_t>(name->size) <= name->rd.buf_size) {
                label = utf8_from_utf16le(std::span(name->rd.buf, static_cast<std::size_t>(name->size)));
            }
            tsk_fs_file_close(volume);
        }
        tsk_error_reset();
        return label;
    }
    return "";
}

} // namespace

struct TskFilesystem::Impl {
    std::shared_ptr<BlockDevice> device;
    std::uint64_t base = 0;
    std::unique_ptr<ExternalImage> image;
    TSK_IMG_INFO* img = nullptr;
    TSK_FS_INFO* fs = nullptr;
    std::string type;
    std::string uuid;
    std::string label;
    std::mutex tsk_mutex; // TSK file objects are not shared between threads

    ~Impl() {
        if (fs != nullptr) {
            tsk_fs_close(fs);
        }
        if (img != nullptr) {
            tsk_img_close(img);
        }
    }
};

TskFilesystem::TskFilesystem(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
TskFilesystem::~TskFilesystem() = default;

Expected<std::unique_ptr<TskFilesystem>> TskFilesystem::open(std::shared_ptr<BlockDevice> device,
                                                             std::uint64_t offset, std::uint64_t size) {
    if (offset > device->size() || size > device->size() - offset || size == 0) {
        return make_error(Errc::invalid_argument, "the filesystem window lies outside the disk");
    }
    auto impl = std::make_unique<Impl>();
    impl->device = std::move(device);
    impl->base = offset;
    impl->image = std::make_unique<ExternalImage>(); // value-initialised: TSK expects zeroed caches
    impl->image->info.tag = TSK_IMG_INFO_TAG;
    impl->image->device = impl->device.get();
    impl->image->base = offset;
    tsk_error_reset();
    impl->img = tsk_img_open_external(impl->image.get(), static_cast<TSK_OFF_T>(size), 512, image_read,
                                      image_close, image_stat);
    if (impl->img == nullptr) {
        return make_error(Errc::io, tsk_message("cannot open the disk for the filesystem reader"));
    }
    impl->fs = tsk_fs_open_img(impl->img, 0, TSK_FS_TYPE_DETECT);
    if (impl->fs == nullptr) {
        return make_error(Errc::unsupported, tsk_message("no filesystem the direct reader knows"));
    }
    impl->type = type_name(impl->fs->ftype);
    impl->uuid = uuid_text(*impl->fs);
    impl->label = volume_label(impl->fs, *impl->device, offset);
    return std::unique_ptr<TskFilesystem>(new TskFilesystem(std::move(impl)));
}

const std::string& TskFilesystem::type() const noexcept {
    return m_impl->type;
}

const std::string& TskFilesystem::uuid() const noexcept {
    return m_impl->uuid;
}

const std::string& TskFilesystem::label() const noexcept {
    return m_impl->label;
}

Expected<std::vector<FsFile>> TskFilesystem::list(std::vector<FsFile>* partial) {
    std::vector<FsFile> files;
    Walk walk{m_impl->fs, TSK_FS_TYPE_ISNTFS(m_impl->fs->ftype) != 0, &files, {}, {}};
    const std::lock_guard lock(m_impl->tsk_mutex);
    tsk_error_reset();
    const auto flags = static_cast<TSK_FS_DIR_WALK_FLAG_ENUM>(
        TSK_FS_DIR_WALK_FLAG_ALLOC | TSK_FS_DIR_WALK_FLAG_RECURSE | TSK_FS_DIR_WALK_FLAG_NOORPHAN);
    if (tsk_fs_dir_walk(m_impl->fs, m_impl->fs->root_inum, flags, on_entry, &walk) != 0) {
        if (partial != nullptr) {
            *partial = std::move(files);
        }
        return make_error(Errc::corrupt, tsk_message("walking the filesystem failed"));
    }
    for (const auto& folder : walk.folders_met) {
        if (!walk.folders_listed.contains(folder)) {
            FsFile gap;
            gap.path = "/" + folder.substr(0, folder.size() - 1);
            gap.problem =
                Error{Errc::corrupt, "the filesystem reader could not list this folder (damaged, in a "
                                     "loop or nested too deep): its files were not scanned"};
            files.push_back(std::move(gap));
        }
    }
    return files;
}

std::optional<std::string> TskFilesystem::read_small_file(const std::string& path, std::size_t limit) {
    const std::lock_guard lock(m_impl->tsk_mutex);
    TSK_FS_FILE* entry = tsk_fs_file_open(m_impl->fs, nullptr, path.c_str());
    if (entry == nullptr) {
        tsk_error_reset();
        return std::nullopt;
    }
    std::optional<std::string> text;
    if (entry->meta != nullptr && entry->meta->type == TSK_FS_META_TYPE_REG) {
        const auto size = static_cast<std::size_t>(
            std::clamp<TSK_OFF_T>(entry->meta->size, 0, static_cast<TSK_OFF_T>(limit)));
        std::string bytes(size, '\0');
        const ssize_t got =
            size == 0 ? 0 : tsk_fs_file_read(entry, 0, bytes.data(), size, TSK_FS_FILE_READ_FLAG_NONE);
        if (got >= 0) {
            bytes.resize(static_cast<std::size_t>(got));
            text = std::move(bytes);
        }
    }
    tsk_fs_file_close(entry);
    tsk_error_reset();
    return text;
}

bool TskFilesystem::is_folder(const std::string& path) {
    const std::lock_guard lock(m_impl->tsk_mutex);
    TSK_FS_FILE* entry = tsk_fs_file_open(m_impl->fs, nullptr, path.c_str());
    const bool folder =
        entry != nullptr && entry->meta != nullptr && entry->meta->type == TSK_FS_META_TYPE_DIR;
    if (entry != nullptr) {
        tsk_fs_file_close(entry);
    }
    tsk_error_reset();
    return folder;
}

Expected<std::size_t> TskFilesystem::read(const FsFile& file, std::uint64_t offset,
                                          std::span<std::byte> out) {
    if (offset >= file.size || out.empty()) {
        return std::size_t{0};
    }
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), file.size - offset));
    out = out.first(n);
    if (file.problem) {
        return std::unexpected(*file.problem);
    }
    if (file.through_tsk) {
        const std::lock_guard lock(m_impl->tsk_mutex);
        TSK_FS_FILE* entry = tsk_fs_file_open_meta(m_impl->fs, nullptr, file.inode);
        if (entry == nullptr) {
            return make_error(Errc::io, tsk_message("the filesystem reader cannot open it"));
        }
        const TSK_FS_ATTR* attr = tsk_fs_file_attr_get_type(
            entry, static_cast<TSK_FS_ATTR_TYPE_ENUM>(file.attr_type), file.attr_id, 1);
        const ssize_t got = attr == nullptr ? -1
                                            : tsk_fs_attr_read(attr, static_cast<TSK_OFF_T>(offset),
                                                               reinterpret_cast<char*>(out.data()), n,
                                                               TSK_FS_FILE_READ_FLAG_NONE);
        std::string message = got < 0 ? tsk_message("the filesystem reader failed") : "";
        tsk_fs_file_close(entry);
        if (got < 0) {
            return make_error(Errc::io, std::move(message));
        }
        return static_cast<std::size_t>(got);
    }
    return read_along_runs(*m_impl->device, m_impl->base, file, offset, out);
}

} // namespace coldscan::disk::detail
