#include "coldscan/signatures/subset_databases.hpp"

#include "coldscan/common/replace_file.hpp"
#include "database_members.hpp"

#include <algorithm>
#include <set>
#include <string>

namespace coldscan::signatures {
namespace {

using detail::Part;

bool wanted_line(std::span<const CatalogueLine> wanted, const CatalogueLine& line) {
    return std::ranges::binary_search(wanted, line);
}

// Writes the members of one database file into the folder, each under a name no other member took.
class SubsetWriter {
public:
    SubsetWriter(std::span<const CatalogueLine> wanted, const std::filesystem::path& folder)
        : m_wanted(wanted), m_folder(folder) {}

    Expected<void> add_file(const std::filesystem::path& file) {
        auto bytes = detail::read_file(file);
        if (!bytes) {
            return std::unexpected(bytes.error());
        }
        const std::string name = file.filename().string();
        if (detail::classify(name).part != Part::container) {
            return add_member(name, *bytes, detail::Origin::plain_file);
        }
        auto engine_only = holds_engine_files_only(name, *bytes);
        if (!engine_only) {
            return std::unexpected(engine_only.error());
        }
        if (*engine_only) {
            return write(name, as_chars(*bytes));
        }
        return detail::visit_container(
            name, *bytes, [&](std::string_view member, std::span<const std::byte> content) {
                if (detail::extension_of(detail::lower(member)) == ".cbc") {
                    return Expected<void>(
                        make_error(Errc::unsupported, name + " holds bytecode and detection lines"));
                }
                return add_member(member, content, detail::origin_of_members(name));
            });
    }

    [[nodiscard]] std::uint64_t lines() const noexcept { return m_lines; }

private:
    static std::string_view as_chars(std::span<const std::byte> bytes) { return detail::as_text(bytes); }

    static Expected<bool> holds_engine_files_only(std::string_view name, std::span<const std::byte> bytes) {
        bool engine_only = true;
        auto visited =
            detail::visit_container(name, bytes, [&](std::string_view member, std::span<const std::byte>) {
                const Part part = detail::classify(member).part;
                engine_only = engine_only && (part == Part::engine || part == Part::ignored);
                return Expected<void>{};
            });
        if (!visited) {
            return std::unexpected(visited.error());
        }
        return engine_only;
    }

    Expected<void> add_member(std::string_view name, std::span<const std::byte> bytes,
                              detail::Origin origin) {
        const detail::Classified what = detail::classify(name);
        if (what.part == Part::ignored) {
            return {};
        }
        const bool whole =
            what.part == Part::engine || what.kind == LineKind::allow_list || what.kind == LineKind::icon;
        if (whole) {
            return write(name, as_chars(bytes));
        }
        if (what.kind == LineKind::yara) { // a YARA source libclamav loads is one unit: whole when wanted
            const CatalogueLine unit{detail::line_digest(LineKind::yara, origin, as_chars(bytes)),
                                     LineKind::yara};
            if (!wanted_line(m_wanted, unit)) {
                return {};
            }
            ++m_lines;
            return write(name, as_chars(bytes));
        }
        std::string kept;
        detail::for_each_line(what.kind, origin, as_chars(bytes),
                              [&](const CatalogueLine& line, std::string_view text) {
                                  if (wanted_line(m_wanted, line)) {
                                      kept.append(text).push_back('\n');
                                      ++m_lines;
                                  }
                              });
        return kept.empty() ? Expected<void>{} : write(name, kept);
    }

    Expected<void> write(std::string_view name, std::string_view content) {
        std::string unique(name);
        for (int copy = 2; !m_names.insert(detail::lower(unique)).second; ++copy) {
            unique = std::to_string(copy) + "-" + std::string(name);
        }
        return replace_file(m_folder / unique, content);
    }

    std::span<const CatalogueLine> m_wanted;
    std::filesystem::path m_folder;
    std::set<std::string> m_names; // lowered: the folder may be on a case-insensitive filesystem
    std::uint64_t m_lines = 0;
};

} // namespace

Expected<SubsetWritten> write_subset_databases(const std::vector<std::filesystem::path>& files,
                                               std::span<const CatalogueLine> wanted,
                                               const std::filesystem::path& folder) {
    SubsetWriter writer(wanted, folder);
    for (const auto& file : files) {
        if (auto added = writer.add_file(file); !added) {
            return std::unexpected(added.error());
        }
    }
    return SubsetWritten{writer.lines()};
}

Expected<std::vector<std::filesystem::path>>
wanted_rule_files(const std::vector<std::filesystem::path>& files, std::span<const CatalogueLine> wanted) {
    std::vector<std::filesystem::path> out;
    for (const auto& file : files) {
        auto catalogue = read_catalogue({file});
        if (!catalogue) {
            return std::unexpected(catalogue.error());
        }
        if (std::ranges::any_of(catalogue->lines,
                                [&](const CatalogueLine& line) { return wanted_line(wanted, line); })) {
            out.push_back(file);
        }
    }
    return out;
}

} // namespace coldscan::signatures
