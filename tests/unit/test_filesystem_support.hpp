// What the filesystem reader tests share: a listing by path and a file read back whole through a reader.
#pragma once

#include "../../disk-access/src/filesystem_reader.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

namespace coldscan::test {

// The listed files by path; each path must be listed once.
inline std::map<std::string, disk::detail::FsFile> by_path(std::vector<disk::detail::FsFile> files) {
    std::map<std::string, disk::detail::FsFile> map;
    for (auto& f : files) {
        const std::string path = f.path;
        REQUIRE(map.emplace(path, std::move(f)).second);
    }
    return map;
}

// A listed file's bytes, read chunk bytes at a time; every read must fill its chunk.
inline std::string read_whole(disk::detail::FilesystemReader& fs, const disk::detail::FsFile& file,
                              std::size_t chunk) {
    std::string bytes(file.size, '\0');
    std::uint64_t offset = 0;
    while (offset < file.size) {
        auto span = std::span(reinterpret_cast<std::byte*>(bytes.data()) + offset,
                              std::min<std::size_t>(chunk, file.size - offset));
        auto n = fs.read(file, offset, span);
        REQUIRE(n);
        REQUIRE(*n == span.size());
        offset += *n;
    }
    return bytes;
}

} // namespace coldscan::test
