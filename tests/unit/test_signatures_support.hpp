// Helpers for the signatures tests: signatures and samples generated at test time.
#pragma once

#include "coldscan/common/content.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/common/unique_fd.hpp"
#include "coldscan/signatures/engine_result.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coldscan::signatures::test {

inline const std::filesystem::path k_testfiles = "/usr/share/clamav-testfiles";

// Split so this source file is not itself an EICAR sample.
inline const std::string k_eicar =
    std::string("X5O!P%@AP[4\\PZX54(P^)7CC)7}$") + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

inline std::vector<std::byte> bytes_of(std::string_view text) {
    std::vector<std::byte> bytes(text.size());
    std::memcpy(bytes.data(), text.data(), text.size());
    return bytes;
}

inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::vector<std::byte> bytes(static_cast<std::size_t>(std::filesystem::file_size(path)));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(in.gcount() == static_cast<std::streamsize>(bytes.size()));
    return bytes;
}

inline void write_file(const std::filesystem::path& path, std::span<const std::byte> bytes) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

inline void write_file(const std::filesystem::path& path, std::string_view text) {
    write_file(path, std::span(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

inline Content memory_content(std::string_view text) {
    return Content::from_memory(bytes_of(text));
}

// Content backed by a descriptor of path; size defaults to the whole file.
inline Content fd_content(const std::filesystem::path& path, std::uint64_t size = UINT64_MAX) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd.valid());
    const auto file_size = static_cast<std::uint64_t>(std::filesystem::file_size(path));
    return Content::from_fd(std::move(fd), std::min(size, file_size));
}

// A reader without a descriptor (like an NBD export): zeros, with `marker` written at marker_offset.
class SyntheticReader final : public ByteReader {
public:
    SyntheticReader(std::uint64_t size, std::string marker, std::uint64_t marker_offset)
        : m_size(size), m_marker(std::move(marker)), m_marker_offset(marker_offset) {}
    [[nodiscard]] Expected<std::size_t> read_at(std::uint64_t offset,
                                                std::span<std::byte> out) const override {
        if (offset >= m_size) {
            return 0;
        }
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), m_size - offset));
        std::fill_n(out.begin(), n, std::byte{0});
        for (std::size_t i = 0; i < m_marker.size(); ++i) {
            const std::uint64_t at = m_marker_offset + i;
            if (at >= offset && at < offset + n) {
                out[static_cast<std::size_t>(at - offset)] = static_cast<std::byte>(m_marker[i]);
            }
        }
        return n;
    }

private:
    std::uint64_t m_size;
    std::string m_marker;
    std::uint64_t m_marker_offset;
};

// A reader whose every read fails, like a disk with a bad sector.
class FailingReader final : public ByteReader {
public:
    [[nodiscard]] Expected<std::size_t> read_at(std::uint64_t /*offset*/,
                                                std::span<std::byte> /*out*/) const override {
        return make_error(Errc::io, "read: Input/output error");
    }
};

inline Content reader_content(std::shared_ptr<const ByteReader> reader, std::uint64_t size) {
    return Content::from_reader(std::move(reader), size);
}

// A byte-for-byte copy of bytes behind a reader without a descriptor.
inline Content copied_reader_content(std::vector<std::byte> bytes) {
    class VectorReader final : public ByteReader {
    public:
        explicit VectorReader(std::vector<std::byte> data) : m_data(std::move(data)) {}
        [[nodiscard]] Expected<std::size_t> read_at(std::uint64_t offset,
                                                    std::span<std::byte> out) const override {
            if (offset >= m_data.size()) {
                return 0;
            }
            const auto n =
                std::min<std::size_t>(out.size(), m_data.size() - static_cast<std::size_t>(offset));
            std::memcpy(out.data(), m_data.data() + offset, n);
            return n;
        }

    private:
        std::vector<std::byte> m_data;
    };
    const auto size = bytes.size();
    return Content::from_reader(std::make_shared<VectorReader>(std::move(bytes)), size);
}

inline std::uint32_t crc32(std::span<const std::byte> bytes) {
    std::uint32_t crc = 0xFFFFFFFFU;
    for (const std::byte b : bytes) {
        crc ^= std::to_integer<std::uint32_t>(b);
        for (int k = 0; k < 8; ++k) {
            crc = (crc >> 1) ^ (0xEDB88320U & (0U - (crc & 1U)));
        }
    }
    return ~crc;
}

struct ZipMember {
    std::string name;
    std::vector<std::byte> data;
};

// A ZIP archive of stored (uncompressed) members, in the order given.
inline std::vector<std::byte> stored_zip(const std::vector<ZipMember>& members) {
    std::vector<std::byte> out;
    const auto put16 = [&](std::uint32_t v) {
        out.push_back(static_cast<std::byte>(v & 0xFF));
        out.push_back(static_cast<std::byte>((v >> 8) & 0xFF));
    };
    const auto put32 = [&](std::uint32_t v) {
        put16(v & 0xFFFF);
        put16(v >> 16);
    };
    const auto put_bytes = [&](std::span<const std::byte> b) { out.insert(out.end(), b.begin(), b.end()); };
    // The header fields both records share: version, flags, method (stored), time, date, crc and sizes.
    const auto put_common = [&](const ZipMember& member, std::uint32_t crc) {
        put16(0);
        put16(0);
        put16(0);
        put16(0x21); // 1980-01-01
        put32(crc);
        put32(static_cast<std::uint32_t>(member.data.size()));
        put32(static_cast<std::uint32_t>(member.data.size()));
        put16(static_cast<std::uint32_t>(member.name.size()));
        put16(0);
    };

    std::vector<std::uint32_t> offsets;
    std::vector<std::uint32_t> crcs;
    for (const auto& member : members) {
        offsets.push_back(static_cast<std::uint32_t>(out.size()));
        crcs.push_back(crc32(member.data));
        put32(0x04034b50); // local file header
        put16(20);
        put_common(member, crcs.back());
        put_bytes(bytes_of(member.name));
        put_bytes(member.data);
    }
    const auto central_offset = static_cast<std::uint32_t>(out.size());
    for (std::size_t i = 0; i < members.size(); ++i) {
        put32(0x02014b50); // central directory header
        put16(20);
        put16(20);
        put_common(members[i], crcs[i]);
        put16(0);
        put16(0);
        put16(0);
        put32(0);
        put32(offsets[i]);
        put_bytes(bytes_of(members[i].name));
    }
    const auto central_size = static_cast<std::uint32_t>(out.size()) - central_offset;

    put32(0x06054b50); // end of central directory
    put16(0);
    put16(0);
    put16(static_cast<std::uint32_t>(members.size()));
    put16(static_cast<std::uint32_t>(members.size()));
    put32(central_size);
    put32(central_offset);
    put16(0);
    return out;
}

inline std::vector<std::byte> stored_zip(std::string_view member_name, std::span<const std::byte> data) {
    return stored_zip({ZipMember{std::string(member_name), {data.begin(), data.end()}}});
}

// ClamAV databases made from the Debian clamav-testfiles and the EICAR string, in a private folder.
struct TestDatabases {
    TempDir dir;
    std::filesystem::path folder;

    static TestDatabases create() {
        auto dir = TempDir::create("coldscan-sigtest");
        REQUIRE(dir.has_value());
        TestDatabases db{std::move(*dir), {}};
        db.folder = db.dir.path() / "db";
        const auto clam_exe = read_file(k_testfiles / "clam.exe");
        Sha256 hasher;
        hasher.update(clam_exe);
        const auto digest = hasher.finish();
        // sigtool --sha256 format: <sha256>:<size>:<name>
        write_file(db.folder / "coldscan.hsb",
                   to_hex(digest) + ":" + std::to_string(clam_exe.size()) + ":Coldscan.Test.ClamExe\n");
        // body signature: <name>:<target type 0 = any>:<offset * = anywhere>:<hex>
        write_file(db.folder / "coldscan.ndb", "Coldscan.Test.Eicar:0:*:" + hex_encode(k_eicar) + "\n");
        return db;
    }
};

inline std::vector<std::string> signatures_of(const EngineResult& result) {
    std::vector<std::string> names;
    for (const auto& detection : result.detections) {
        names.push_back(detection.signature);
    }
    return names;
}

} // namespace coldscan::signatures::test
