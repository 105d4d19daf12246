#include "filesystem_reader.hpp"

#include "tsk_filesystem.hpp"
#include "xfs_filesystem.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

namespace coldscan::disk::detail {

Expected<std::unique_ptr<FilesystemReader>> open_filesystem_reader(std::shared_ptr<BlockDevice> device,
                                                                   std::uint64_t offset, std::uint64_t size) {
    // XFS by its magic (TSK has no XFS): our own reader's answer is final, its refusals included.
    std::array<std::byte, 4> magic{};
    if (size >= magic.size() && offset <= device->size() && size <= device->size() - offset) {
        if (auto ok = device->read(offset, magic); !ok) {
            return std::unexpected(ok.error());
        }
        if (std::memcmp(magic.data(), "XFSB", magic.size()) == 0) {
            auto xfs = XfsFilesystem::open(std::move(device), offset, size);
            if (!xfs) {
                return std::unexpected(xfs.error());
            }
            return std::unique_ptr<FilesystemReader>(std::move(*xfs));
        }
    }
    auto tsk = TskFilesystem::open(std::move(device), offset, size);
    if (!tsk) {
        return std::unexpected(tsk.error());
    }
    return std::unique_ptr<FilesystemReader>(std::move(*tsk));
}

Expected<std::size_t> read_along_runs(BlockDevice& device, std::uint64_t base, const FsFile& file,
                                      std::uint64_t offset, std::span<std::byte> out) {
    if (offset >= file.size || out.empty()) {
        return std::size_t{0};
    }
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), file.size - offset));
    out = out.first(n);
    if (!file.resident.empty() || file.runs.empty()) {
        if (file.resident.size() < offset + n) {
            return make_error(Errc::io, "the file's data is shorter than its size");
        }
        std::memcpy(out.data(), file.resident.data() + offset, n);
        return n;
    }
    // The run holding offset, then onwards.
    auto run = std::upper_bound(file.runs.begin(), file.runs.end(), offset,
                                [](std::uint64_t at, const DataRun& r) { return at < r.file_offset; });
    --run; // runs start at 0 and cover the file, so one starts at or before offset
    std::uint64_t position = offset;
    std::span<std::byte> rest = out;
    for (; !rest.empty() && run != file.runs.end(); ++run) {
        const std::uint64_t delta = position - run->file_offset;
        const auto piece =
            static_cast<std::size_t>(std::min<std::uint64_t>(rest.size(), run->length - delta));
        // Past the initialised size (NTFS) the bytes read as zeros, whatever the blocks hold.
        const std::uint64_t initialised_end =
            file.initialized > position ? std::min<std::uint64_t>(file.initialized - position, piece) : 0;
        if (run->sparse || initialised_end == 0) {
            std::fill_n(rest.begin(), piece, std::byte{0});
        } else {
            auto ok = device.read(base + run->fs_offset + delta, rest.first(initialised_end));
            if (!ok) {
                return std::unexpected(ok.error());
            }
            std::fill(rest.begin() + static_cast<std::ptrdiff_t>(initialised_end), rest.begin() + piece,
                      std::byte{0});
        }
        rest = rest.subspan(piece);
        position += piece;
    }
    return n - rest.size();
}

bool well_formed(const FsFile& file, std::uint64_t fs_size) {
    if (file.through_tsk || file.problem) {
        return true; // nothing is read along runs
    }
    if (!file.resident.empty() || file.runs.empty()) {
        return file.resident.size() >= file.size;
    }
    std::uint64_t next = 0;
    for (const auto& run : file.runs) {
        if (run.file_offset != next || run.length == 0 || run.length > UINT64_MAX - next ||
            (!run.sparse && (run.fs_offset > fs_size || run.length > fs_size - run.fs_offset))) {
            return false;
        }
        next += run.length;
    }
    return next >= file.size;
}

} // namespace coldscan::disk::detail
