#include "raw_layout_check.hpp"

#include "coldscan/common/read_fully.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <array>
#include <cstring>
#include <fcntl.h>
#include <string_view>
#include <vector>

namespace coldscan::disk {
namespace {

constexpr std::size_t k_head_size = 72 * 1024;

bool has_at(std::span<const std::byte> head, std::size_t offset, std::string_view magic) {
    return offset + magic.size() <= head.size() &&
           std::memcmp(head.data() + offset, magic.data(), magic.size()) == 0;
}

struct Magic {
    std::size_t offset;
    std::string_view bytes;
};

// Where well-known layouts put their signatures (partition tables, superblocks, volume headers).
constexpr std::array k_magics{
    Magic{510, std::string_view("\x55\xAA", 2)},   // MBR / FAT / NTFS / exFAT boot sector
    Magic{512, "EFI PART"},                        // GPT, 512-byte sectors
    Magic{4096, "EFI PART"},                       // GPT, 4 KiB sectors
    Magic{1080, std::string_view("\x53\xEF", 2)},  // ext2/3/4 superblock magic
    Magic{0, "XFSB"},                              // XFS
    Magic{512, "LABELONE"},                        // LVM2 physical volume
    Magic{0, std::string_view("LUKS\xBA\xBE", 6)}, // LUKS
    Magic{65600, "_BHRfS_M"},                      // btrfs
    Magic{32769, "CD001"},                         // ISO9660
    Magic{4086, "SWAPSPACE2"},                     // Linux swap
    Magic{4086, "SWAP-SPACE"},
    Magic{1024, "H+"},                                    // HFS+
    Magic{1024, "HX"},                                    // HFSX
    Magic{65588, "ReIsEr"},                               // ReiserFS 3.6+ (prefix of ReIsEr2Fs/ReIsEr3Fs)
    Magic{0, "hsqs"},                                     // squashfs
    Magic{1024, std::string_view("\x10\x20\xF5\xF2", 4)}, // F2FS
};

} // namespace

bool starts_like_a_disk(std::span<const std::byte> head) {
    for (const auto& magic : k_magics) {
        if (has_at(head, magic.offset, magic.bytes)) {
            return true;
        }
    }
    return false;
}

Expected<bool> file_starts_like_a_disk(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return make_error(Errc::io, errno_message("cannot open " + path.string()));
    }
    std::vector<std::byte> head(k_head_size);
    int error = 0;
    head.resize(read_fully(fd.get(), 0, head, error));
    if (error != 0) {
        return make_error(Errc::io, errno_message("cannot read " + path.string(), error));
    }
    return starts_like_a_disk(head);
}

} // namespace coldscan::disk
