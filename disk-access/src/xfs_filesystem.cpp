#include "xfs_filesystem.hpp"

#include "xfs_volume.hpp"

#include <algorithm>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <unordered_set>

namespace coldscan::disk::detail {

namespace {

using xfs::Visit;

constexpr std::size_t k_max_path = 16 * 1024;             // a folder deeper than this is not walked
constexpr std::uint64_t k_max_listing_bytes = 2ULL << 30; // records of one walk, at most

FsFile problem_entry(std::string path, std::uint64_t ino, Errc code, std::string message) {
    FsFile file;
    file.path = std::move(path);
    file.inode = ino;
    file.stamp.inode = ino;
    file.problem = Error{code, std::move(message)};
    return file;
}

bool other_file_type(std::uint16_t mode) {
    switch (mode & xfs::k_type_mask) {
    case xfs::k_type_symlink:
    case 0020000: // character device
    case 0060000: // block device
    case 0010000: // fifo
    case 0140000: // socket
        return true;
    default:
        return false;
    }
}

} // namespace

struct XfsFilesystem::Impl {
    xfs::Volume volume; // read() uses only its device; all else, list()'s thread
    std::string type = "xfs";
    std::string uuid;
    std::string label;
};

namespace {

// One walk of the folder tree from the root, depth first, each folder once.
class Walk {
public:
    explicit Walk(xfs::Volume& volume) : m_volume(volume), m_directory_budget(volume.sb().size_bytes()) {}

    std::vector<FsFile> files;

    Expected<void> run() {
        auto root = m_volume.inode(m_volume.sb().root_inode);
        if (!root) {
            return std::unexpected(root.error());
        }
        m_visited.insert(m_volume.sb().root_inode);
        std::vector<Folder> stack{Folder{m_volume.sb().root_inode, ""}};
        while (!stack.empty()) {
            Folder folder = std::move(stack.back());
            stack.pop_back();
            std::vector<Folder> subfolders;
            if (auto ok = list_folder(folder, subfolders); !ok) {
                return ok;
            }
            std::move(subfolders.rbegin(), subfolders.rend(), std::back_inserter(stack));
        }
        return {};
    }

private:
    struct Folder {
        std::uint64_t ino = 0;
        std::string path; // "" for the root
    };

    Expected<void> list_folder(const Folder& folder, std::vector<Folder>& subfolders) {
        const std::string shown = folder.path.empty() ? "/" : folder.path;
        auto dir = m_volume.inode(folder.ino); // read when its name was met: in the cache, mostly
        if (!dir) {
            return problem(shown, folder.ino, dir.error(), "the filesystem reader cannot read its inode: ");
        }
        if (!dir->is_directory()) {
            return problem(shown, folder.ino, Error{Errc::corrupt, "the root inode is not a folder"}, "");
        }
        std::optional<Error> fatal;
        auto listed = m_volume.entries(
            *dir,
            [&](std::string_view name, std::uint64_t ino) {
                if (auto ok = entry(folder, name, ino, subfolders); !ok) {
                    fatal = ok.error();
                    return Visit::stop;
                }
                return Visit::go_on;
            },
            m_directory_budget);
        if (fatal) {
            return std::unexpected(*fatal);
        }
        if (!listed) {
            return problem(
                shown, folder.ino, listed.error(),
                "the filesystem reader could not list all of this folder (its other files were not "
                "scanned): ");
        }
        return {};
    }

    Expected<void> entry(const Folder& folder, std::string_view name, std::uint64_t ino,
                         std::vector<Folder>& subfolders) {
        std::string path = folder.path + "/" + std::string(name);
        if (name.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos) {
            std::replace_if(
                path.begin() + static_cast<std::ptrdiff_t>(folder.path.size() + 1), path.end(),
                [](char c) { return c == '/' || c == '\0'; }, '?');
            return problem(path, ino, Error{Errc::corrupt, "a folder entry's name holds '/' or NUL"}, "");
        }
        auto inode = m_volume.inode(ino);
        if (!inode) {
            return problem(path, ino, inode.error(), "the filesystem reader cannot read its inode: ");
        }
        if (inode->is_directory()) {
            if (path.size() > k_max_path) {
                return problem(path, ino,
                               Error{Errc::unsupported, "folder nested too deep: its files were not "
                                                        "scanned"},
                               "");
            }
            if (!m_visited.insert(ino).second) {
                return problem(path, ino,
                               Error{Errc::corrupt, "this folder is listed already under another path "
                                                    "(a loop in the folder tree): not walked again"},
                               "");
            }
            subfolders.push_back(Folder{ino, std::move(path)});
            return {};
        }
        if (!inode->is_regular()) {
            if (other_file_type(inode->mode)) {
                return {}; // symbolic links, devices, fifos and sockets are not listed
            }
            return problem(path, ino,
                           Error{Errc::corrupt, fmt::format("unknown file type {:o}", inode->mode)}, "");
        }
        auto file = m_volume.describe(*inode, std::move(path));
        if (!file) {
            return std::unexpected(file.error());
        }
        return add(std::move(*file));
    }

    // A file or folder the walk cannot describe is listed with the problem; io errors end the walk.
    Expected<void> problem(const std::string& path, std::uint64_t ino, const Error& error,
                           std::string_view why) {
        if (error.code == Errc::io) {
            return std::unexpected(error);
        }
        return add(problem_entry(path, ino, error.code, std::string(why) + error.message));
    }

    Expected<void> add(FsFile file) {
        m_listing_bytes += sizeof(FsFile) + file.path.size() + file.runs.size() * sizeof(DataRun);
        if (m_listing_bytes > k_max_listing_bytes) {
            return make_error(Errc::corrupt,
                              "the XFS listing passed its memory budget (a hostile filesystem?)");
        }
        files.push_back(std::move(file));
        return {};
    }

    xfs::Volume& m_volume;
    std::uint64_t m_directory_budget;
    std::uint64_t m_listing_bytes = 0;
    std::unordered_set<std::uint64_t> m_visited; // folders
};

} // namespace

XfsFilesystem::XfsFilesystem(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
XfsFilesystem::~XfsFilesystem() = default;

Expected<std::unique_ptr<XfsFilesystem>> XfsFilesystem::open(std::shared_ptr<BlockDevice> device,
                                                             std::uint64_t offset, std::uint64_t size) {
    if (offset > device->size() || size > device->size() - offset || size == 0) {
        return make_error(Errc::invalid_argument, "the filesystem window lies outside the disk");
    }
    if (size < xfs::k_superblock_bytes) {
        return make_error(Errc::unsupported, "no XFS superblock");
    }
    std::vector<std::byte> sector(xfs::k_superblock_bytes);
    if (auto ok = device->read(offset, sector); !ok) {
        return std::unexpected(ok.error());
    }
    auto sb = xfs::parse_superblock(sector, size);
    if (!sb) {
        return std::unexpected(sb.error());
    }
    xfs::Volume volume(std::move(device), offset, std::move(*sb));
    auto root = volume.inode(volume.sb().root_inode);
    if (!root) {
        return make_error(root.error().code, "XFS root folder: " + root.error().message);
    }
    if (!root->is_directory()) {
        return make_error(Errc::corrupt, "XFS root inode is not a folder");
    }
    const std::string uuid = xfs::uuid_text(volume.sb().uuid);
    const std::string label = volume.sb().label;
    auto impl = std::unique_ptr<Impl>(new Impl{std::move(volume), "xfs", uuid, label});
    return std::unique_ptr<XfsFilesystem>(new XfsFilesystem(std::move(impl)));
}

const std::string& XfsFilesystem::type() const noexcept {
    return m_impl->type;
}

const std::string& XfsFilesystem::uuid() const noexcept {
    return m_impl->uuid;
}

const std::string& XfsFilesystem::label() const noexcept {
    return m_impl->label;
}

Expected<std::vector<FsFile>> XfsFilesystem::list(std::vector<FsFile>* partial) {
    Walk walk(m_impl->volume);
    if (auto ok = walk.run(); !ok) {
        if (partial != nullptr) {
            *partial = std::move(walk.files);
        }
        return std::unexpected(ok.error());
    }
    return std::move(walk.files);
}

std::optional<std::string> XfsFilesystem::read_small_file(const std::string& path, std::size_t limit) {
    auto inode = m_impl->volume.resolve(path);
    if (!inode || !inode->is_regular()) {
        return std::nullopt;
    }
    auto file = m_impl->volume.describe(*inode, path);
    if (!file || file->problem) {
        return std::nullopt;
    }
    std::string bytes(static_cast<std::size_t>(std::min<std::uint64_t>(file->size, limit)), '\0');
    auto got = read_along_runs(m_impl->volume.device(), m_impl->volume.base(), *file, 0,
                               std::as_writable_bytes(std::span(bytes)));
    if (!got) {
        spdlog::debug("xfs: reading {}: {}", path, got.error().message);
        return std::nullopt;
    }
    bytes.resize(*got);
    return bytes;
}

bool XfsFilesystem::is_folder(const std::string& path) {
    auto inode = m_impl->volume.resolve(path);
    return inode && inode->is_directory();
}

Expected<std::size_t> XfsFilesystem::read(const FsFile& file, std::uint64_t offset,
                                          std::span<std::byte> out) {
    if (file.problem) {
        return std::unexpected(*file.problem);
    }
    return read_along_runs(m_impl->volume.device(), m_impl->volume.base(), file, offset, out);
}

} // namespace coldscan::disk::detail
