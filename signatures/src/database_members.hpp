// ClamAV database files as libclamav reads them: what each file or container member is, by its name; the
// members of a .cvd/.cld/.cud container (gzip-compressed or plain tar after a 512-byte header); the lines of
// a line-based database. Shared by the catalogue and the subset writer.
// Thread rule: free functions.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/signatures/signature_catalogue.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::signatures::detail {

// What a database file (or a container member) is, by its extension.
enum class Part { lines, engine, container, ignored };

struct Classified {
    Part part = Part::engine;
    LineKind kind = LineKind::hash;
};

[[nodiscard]] std::string lower(std::string_view text);
[[nodiscard]] std::string_view extension_of(std::string_view name);
[[nodiscard]] Classified classify(std::string_view name);
[[nodiscard]] std::string_view as_text(std::span<const std::byte> bytes);

// Where a line was read. libclamav names what a signed container (.cvd, .cld) detects as it is and what a
// plain file detects as "NAME.UNOFFICIAL"; an unsigned container (.cud) is named as a plain file by
// libclamav 1.4 and as a signed one by later versions. So the same text is another line in each.
enum class Origin : std::uint8_t { plain_file, signed_container, unsigned_container };

// The origin of a container's members, by the container's name.
[[nodiscard]] Origin origin_of_members(std::string_view container);

// The digest of a line, or of a YARA source (one unit): over its kind (with the container bit) and its bytes.
[[nodiscard]] Sha256Digest line_digest(LineKind kind, Origin origin, std::string_view text);

// Each line libclamav's loaders read (no empty lines, no comments; trailing blanks cut), with its digest.
using LineVisitor = std::function<void(const CatalogueLine& line, std::string_view text)>;
void for_each_line(LineKind kind, Origin origin, std::string_view text, const LineVisitor& visit);

// Each regular member of a container, by its name without folders. Errors: invalid_argument (no ClamAV-VDB
// header, a broken gzip stream or tar, a container inside a container, more than k_max_unpacked bytes), or
// the visitor's own.
using MemberVisitor =
    std::function<Expected<void>(std::string_view member, std::span<const std::byte> bytes)>;
[[nodiscard]] Expected<void> visit_container(std::string_view name, std::span<const std::byte> bytes,
                                             const MemberVisitor& visit);

// A whole file. Error: io.
[[nodiscard]] Expected<std::vector<std::byte>> read_file(const std::filesystem::path& path);

} // namespace coldscan::signatures::detail
