// Names and labels as filesystems store them (untrusted bytes from the guest disk), turned into our strings.
// Pure functions, kept apart from tsk_filesystem.cpp so the fuzzer (tests/fuzz/fuzz_fs_names.cpp) needs no
// libtsk.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace coldscan::disk::detail {

// A label as the filesystem pads it, cut at the first NUL (ext pads with NULs) and without trailing spaces
// (FAT pads with spaces).
[[nodiscard]] std::string trimmed(std::string text);
// UTF-16LE (NTFS names) to UTF-8; unpaired surrogates become U+FFFD, an odd last byte is dropped.
[[nodiscard]] std::string utf8_from_utf16le(std::span<const std::uint8_t> bytes);

} // namespace coldscan::disk::detail
