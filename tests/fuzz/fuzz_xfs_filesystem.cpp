// The XFS reader (xfs_format, xfs_directory, xfs_extents, xfs_filesystem.cpp) through
// open_filesystem_reader, on a 16 MiB disk made from the input.
//
// Input: records of a u32 big-endian byte offset, a u16 big-endian length and that many bytes, each written
// over a disk of zeros (later records win; bytes past the disk's end are dropped). A real image's metadata
// fits in a few KiB this way, where the image itself is 16 MiB of mostly zeros: make_seeds.py writes the
// seeds so from mkfs.xfs images (every run of non-zero bytes but the log's).
//
// Oracles: open fails only as unsupported or corrupt; list fails only as corrupt; every listed file has an
// absolute path and is well_formed; a file with a problem cannot be read, any other reads back to exactly its
// size; read_small_file gives at most its limit.
//
// TSK is not in the fuzz build: its backend's members are defined below to refuse everything, so that
// filesystem_reader.cpp (open_filesystem_reader, read_along_runs, well_formed) links without libtsk.
#include "filesystem_reader.hpp"
#include "fuzz_support.hpp"
#include "tsk_filesystem.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

namespace coldscan::disk::detail {

struct TskFilesystem::Impl {};
TskFilesystem::TskFilesystem(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
TskFilesystem::~TskFilesystem() = default;
Expected<std::unique_ptr<TskFilesystem>> TskFilesystem::open(std::shared_ptr<BlockDevice> /*device*/,
                                                             std::uint64_t /*offset*/,
                                                             std::uint64_t /*size*/) {
    return make_error(Errc::unsupported, "no TSK in the fuzz build");
}
const std::string& TskFilesystem::type() const noexcept {
    static const std::string none;
    return none;
}
const std::string& TskFilesystem::uuid() const noexcept {
    return type();
}
const std::string& TskFilesystem::label() const noexcept {
    return type();
}
Expected<std::vector<FsFile>> TskFilesystem::list(std::vector<FsFile>* /*partial*/) {
    return make_error(Errc::unsupported, "no TSK in the fuzz build");
}
std::optional<std::string> TskFilesystem::read_small_file(const std::string& /*path*/,
                                                          std::size_t /*limit*/) {
    return std::nullopt;
}
bool TskFilesystem::is_folder(const std::string& /*path*/) {
    return false;
}
Expected<std::size_t> TskFilesystem::read(const FsFile& /*file*/, std::uint64_t /*offset*/,
                                          std::span<std::byte> /*out*/) {
    return make_error(Errc::unsupported, "no TSK in the fuzz build");
}

} // namespace coldscan::disk::detail

namespace {

using coldscan::Errc;
using coldscan::Expected;
using coldscan::disk::detail::FsFile;

constexpr std::uint64_t k_disk_bytes = 16U << 20;
constexpr std::uint64_t k_read_budget = 4U << 20; // bytes of file data read per input

// Zeros with the input's records written over them.
class SparseDevice final : public coldscan::disk::BlockDevice {
public:
    explicit SparseDevice(coldscan::fuzz::FuzzInput& input) {
        while (!input.empty()) {
            const auto offset = input.integer<std::uint32_t>();
            std::string bytes = input.bytes(input.integer<std::uint16_t>());
            if (offset < k_disk_bytes) {
                bytes.resize(std::min<std::size_t>(bytes.size(), k_disk_bytes - offset));
                m_records.emplace_back(offset, std::move(bytes));
            }
        }
    }
    [[nodiscard]] std::uint64_t size() const noexcept override { return k_disk_bytes; }
    [[nodiscard]] Expected<void> read(std::uint64_t offset, std::span<std::byte> out) override {
        if (offset > k_disk_bytes || out.size() > k_disk_bytes - offset) {
            return coldscan::make_error(Errc::invalid_argument, "read past the end");
        }
        std::fill(out.begin(), out.end(), std::byte{0});
        for (const auto& [at, bytes] : m_records) {
            const std::uint64_t from = std::max<std::uint64_t>(at, offset);
            const std::uint64_t to = std::min<std::uint64_t>(at + bytes.size(), offset + out.size());
            if (from < to) {
                std::memcpy(out.data() + (from - offset), bytes.data() + (from - at), to - from);
            }
        }
        return {};
    }

private:
    std::vector<std::pair<std::uint64_t, std::string>> m_records;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    coldscan::fuzz::FuzzInput input(data, size);
    auto device = std::make_shared<SparseDevice>(input);
    auto reader = coldscan::disk::detail::open_filesystem_reader(device, 0, k_disk_bytes);
    if (!reader) {
        FUZZ_CHECK(reader.error().code == Errc::unsupported || reader.error().code == Errc::corrupt);
        FUZZ_CHECK(!reader.error().message.empty());
        return 0;
    }
    auto& fs = **reader;
    FUZZ_CHECK(fs.type() == "xfs");
    FUZZ_CHECK(fs.uuid().size() == 36);
    FUZZ_CHECK(fs.label().size() <= 12);
    FUZZ_CHECK(fs.is_folder("/"));

    std::vector<FsFile> partial;
    auto listed = fs.list(&partial);
    if (!listed) {
        FUZZ_CHECK(listed.error().code == Errc::corrupt);
    }
    const std::vector<FsFile>& files = listed ? *listed : partial;
    std::uint64_t budget = k_read_budget;
    std::array<std::byte, 65536> buffer{};
    for (const auto& file : files) {
        FUZZ_CHECK(file.path.starts_with('/') &&
                   (file.path.size() > 1 || file.problem)); // "/": the root's problem
        FUZZ_CHECK(coldscan::disk::detail::well_formed(file, k_disk_bytes));
        FUZZ_CHECK(!file.through_tsk && file.resident.empty());
        if (file.problem) {
            FUZZ_CHECK(!file.problem->message.empty());
            FUZZ_CHECK(!fs.read(file, 0, buffer));
            continue;
        }
        for (std::uint64_t at = 0; at < file.size && budget > 0;) {
            const std::uint64_t want = std::min<std::uint64_t>({buffer.size(), file.size - at, budget});
            auto n = fs.read(file, at, std::span(buffer).first(want));
            FUZZ_CHECK(n && *n == want);
            at += want;
            budget -= want;
        }
    }
    if (!files.empty()) {
        const auto small = fs.read_small_file(files.front().path, 100);
        FUZZ_CHECK(!small || small->size() <= 100);
    }
    return 0;
}
