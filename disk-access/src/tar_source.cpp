#include "tar_source.hpp"

#include "spill_file.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace coldscan::disk::detail {
namespace {

// GNU tar pads the archive to its 10 KiB record size; anything far beyond that is not a tar trailer.
constexpr std::uint64_t k_max_trailer = 1U << 20;
constexpr std::size_t k_chunk = 1U << 20;

// m_listing_seen values.
constexpr std::uint8_t k_not_seen = 0;
constexpr std::uint8_t k_seen_other = 1; // a folder, link, device...
constexpr std::uint8_t k_seen_regular = 2;

FileEntry problem_entry(std::string path, std::uint64_t size, Errc code, std::string message) {
    FileEntry entry;
    entry.path = std::move(path);
    entry.size = size;
    entry.problem = Error{code, std::move(message)};
    return entry;
}

constexpr std::array<std::pair<char, char>, 7> k_escapes{
    {{'n', '\n'}, {'t', '\t'}, {'r', '\r'}, {'a', '\a'}, {'b', '\b'}, {'f', '\f'}, {'v', '\v'}}};

// Undoes GNU tar's quoting of file names in its messages (backslash escapes, octal bytes).
std::string unescape_tar_name(std::string_view quoted) {
    std::string out;
    for (std::size_t i = 0; i < quoted.size(); ++i) {
        if (quoted[i] != '\\' || i + 1 == quoted.size()) {
            out.push_back(quoted[i]);
            continue;
        }
        const char c = quoted[++i];
        if (c >= '0' && c <= '7') {
            unsigned value = 0;
            std::size_t digits = 0;
            while (digits < 3 && i < quoted.size() && quoted[i] >= '0' && quoted[i] <= '7') {
                value = value * 8 + static_cast<unsigned>(quoted[i] - '0');
                ++i;
                ++digits;
            }
            --i;
            out.push_back(static_cast<char>(value & 0xFFU));
            continue;
        }
        const auto* escape = std::find_if(k_escapes.begin(), k_escapes.end(),
                                          [c](const auto& pair) { return pair.first == c; });
        out.push_back(escape != k_escapes.end() ? escape->second : c);
    }
    return out;
}

} // namespace

std::optional<std::string> tar_complaint_path(std::string_view line) {
    if (!line.starts_with("tar: ./")) {
        return std::nullopt;
    }
    const std::string_view rest = line.substr(5);
    const auto colon = rest.find(": ");
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    return normalise_tar_path(unescape_tar_name(rest.substr(0, colon)));
}

TarSource::TarSource(UniqueFd stream, std::unique_ptr<TarProducer> producer, std::vector<std::string> listing,
                     SourceOptions options, std::optional<std::uint64_t> expected_bytes,
                     std::optional<std::uint64_t> expected_files)
    : m_stream(std::move(stream)), m_reader(m_stream.get(), options.stall_timeout),
      m_producer(std::move(producer)), m_options(std::move(options)), m_expected_bytes(expected_bytes),
      m_expected_files(expected_files), m_listing(std::move(listing)) {
    std::sort(m_listing.begin(), m_listing.end());
    m_listing.erase(std::unique(m_listing.begin(), m_listing.end()), m_listing.end());
    m_listing_seen.assign(m_listing.size(), k_not_seen);
    m_listing_size.assign(m_listing.size(), 0);
}

TarSource::~TarSource() {
    // Close the read end first: a producer still writing then fails instead of blocking, and can be joined.
    m_stream.reset();
    m_producer.reset();
}

void TarSource::mark_seen(const std::string& path, std::optional<std::uint64_t> regular_size) {
    const auto it = std::lower_bound(m_listing.begin(), m_listing.end(), path);
    if (it != m_listing.end() && *it == path) {
        const auto index = static_cast<std::size_t>(it - m_listing.begin());
        m_listing_seen[index] = regular_size ? k_seen_regular : k_seen_other;
        m_listing_size[index] = regular_size.value_or(0);
    } else if (regular_size) {
        m_unlisted_sizes[path] = *regular_size;
    }
}

std::optional<std::uint64_t> TarSource::regular_size(const std::string& path) const {
    const auto it = std::lower_bound(m_listing.begin(), m_listing.end(), path);
    if (it != m_listing.end() && *it == path) {
        const auto index = static_cast<std::size_t>(it - m_listing.begin());
        if (m_listing_seen[index] == k_seen_regular) {
            return m_listing_size[index];
        }
        return std::nullopt;
    }
    if (const auto found = m_unlisted_sizes.find(path); found != m_unlisted_sizes.end()) {
        return found->second;
    }
    return std::nullopt;
}

void TarSource::end_stream(std::optional<Error> stream_error) {
    m_stream.reset();
    TarProducerResult result = m_producer->finish();
    std::optional<Error> error = std::move(stream_error);
    if (result.error) {
        if (error) {
            error->message += "; " + result.error->message;
        } else {
            error = std::move(result.error);
        }
    }
    m_final_error = error;
    const std::string reason = error ? error->message : "the tar stream ended without it";

    std::unordered_map<std::string, std::string> file_errors;
    for (auto& [path, message] : result.file_errors) {
        if (const auto size = regular_size(path)) {
            m_problems.push_back(problem_entry(
                path, *size, Errc::io,
                "the appliance reported an error reading this file after streaming it, so the bytes "
                "delivered for it may be incomplete: " +
                    message));
        } else {
            file_errors.emplace(path, message);
        }
    }

    std::vector<std::string> missing;
    for (std::size_t i = 0; i < m_listing.size(); ++i) {
        if (m_listing_seen[i] != k_not_seen) {
            continue;
        }
        // A name with listed children is a folder, whatever else is unknown about it.
        const std::string folder_prefix = m_listing[i] + "/";
        const auto child = std::lower_bound(m_listing.begin(), m_listing.end(), folder_prefix);
        if (child == m_listing.end() || !child->starts_with(folder_prefix)) {
            missing.push_back(m_listing[i]);
        }
    }
    if (!missing.empty()) {
        auto regular = m_producer->regular_files(missing);
        if (regular) {
            for (auto& file : *regular) {
                const auto specific = file_errors.find(file.path);
                const std::string& why = specific != file_errors.end() ? specific->second : reason;
                m_problems.push_back(problem_entry(std::move(file.path), file.size, Errc::io,
                                                   "the appliance did not deliver this file (" + why + ")"));
            }
        } else {
            // Cannot tell files from folders: report every name rather than drop a file silently.
            for (auto& path : missing) {
                m_problems.push_back(problem_entry(std::move(path), 0, Errc::io,
                                                   "the appliance did not deliver this name (" + reason +
                                                       "; its type is unknown: " + regular.error().message +
                                                       ")"));
            }
        }
    }
    m_phase = Phase::reporting;
}

Expected<std::optional<FileEntry>> TarSource::next() {
    m_current.reset();
    for (;;) {
        switch (m_phase) {
        case Phase::streaming: {
            auto member = m_reader.next();
            if (!member) {
                end_stream(member.error());
                continue;
            }
            if (!*member) {
                auto drained = m_reader.drain(k_max_trailer);
                end_stream(drained ? std::nullopt : std::optional<Error>(drained.error()));
                continue;
            }
            TarMember& m = **member;
            switch (m.type) {
            case TarMemberType::regular: {
                mark_seen(m.path, m.size);
                m_current = m.path;
                m_current_size = m.size;
                FileEntry entry;
                entry.path = std::move(m.path);
                entry.size = m.size;
                entry.mtime = m.mtime;
                return entry;
            }
            case TarMemberType::hard_link: {
                const auto size = regular_size(m.link_target);
                if (!size) {
                    mark_seen(m.path, std::nullopt);
                    return problem_entry(std::move(m.path), 0, Errc::io,
                                         "hard link to " + m.link_target +
                                             ", which the tar stream did not deliver before it");
                }
                mark_seen(m.path, *size);
                FileEntry entry;
                entry.path = std::move(m.path);
                entry.size = *size;
                entry.mtime = m.mtime;
                entry.hardlink_of = std::move(m.link_target);
                return entry;
            }
            case TarMemberType::unsupported:
                mark_seen(m.path, std::nullopt);
                return problem_entry(std::move(m.path), m.size, Errc::unsupported, m.unsupported_reason);
            case TarMemberType::symlink:
            case TarMemberType::directory:
            case TarMemberType::special:
                mark_seen(m.path, std::nullopt);
                continue;
            }
            continue;
        }
        case Phase::reporting:
            if (!m_problems.empty()) {
                FileEntry entry = std::move(m_problems.front());
                m_problems.pop_front();
                return entry;
            }
            m_phase = Phase::done;
            continue;
        case Phase::done:
            if (m_final_error) {
                return std::unexpected(*m_final_error);
            }
            return std::nullopt;
        }
    }
}

Expected<Content> TarSource::read(const FileEntry& entry) {
    if (!m_current || entry.path != *m_current || entry.hardlink_of || entry.problem) {
        return make_error(Errc::invalid_argument,
                          "a tar stream reads only the regular file entry next() just returned, once");
    }
    m_current.reset();
    const std::uint64_t size = m_current_size;
    assert(m_reader.remaining() == size);
    if (size > m_options.max_in_memory) {
        return read_spilled(size);
    }
    std::vector<std::byte> bytes(static_cast<std::size_t>(size));
    std::size_t done = 0;
    while (done < bytes.size()) {
        auto n = m_reader.read(std::span(bytes).subspan(done));
        if (!n) {
            return std::unexpected(n.error());
        }
        assert(*n > 0);
        done += *n;
    }
    return Content::from_memory(std::move(bytes));
}

Expected<Content> TarSource::read_spilled(std::uint64_t size) {
    auto fd = create_spill_file(m_options.spill_dir);
    if (!fd) {
        return std::unexpected(fd.error()); // next() skips the data
    }
    m_chunk.resize(k_chunk);
    for (std::uint64_t done = 0; done < size;) {
        auto n = m_reader.read(m_chunk);
        if (!n) {
            return std::unexpected(n.error());
        }
        assert(*n > 0);
        if (auto written = write_all(fd->get(), std::span(m_chunk).first(*n)); !written) {
            return std::unexpected(written.error());
        }
        done += *n;
    }
    return spilled_content(std::move(*fd), size);
}

} // namespace coldscan::disk::detail
