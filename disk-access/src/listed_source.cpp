#include "listed_source.hpp"

#include "coldscan/common/log.hpp"
#include "spill_file.hpp"

#include <algorithm>
#include <chrono>
#include <map>

namespace coldscan::disk::detail {
namespace {

// Large enough to amortise the per-call cost of the appliance, small enough for one protocol message.
constexpr std::size_t k_read_chunk = 2U << 20;

FileEntry entry_of(const ListedFile& file) {
    FileEntry entry;
    entry.path = file.path;
    entry.size = file.size;
    entry.mtime = file.stamp.mtime_ns / 1'000'000'000;
    entry.stamp = file.stamp;
    entry.problem = file.problem;
    entry.block_key = file.block_key;
    return entry;
}

struct LinkGroup {
    std::size_t primary = 0;
    std::vector<std::size_t> links;
};

} // namespace

ListedSource::ListedSource(std::vector<ListedFile> files, WantBytes want, std::unique_ptr<FileReads> reads,
                           SourceOptions options, ReadOrder order)
    : m_files(std::move(files)), m_want(std::move(want)), m_reads(std::move(reads)),
      m_options(std::move(options)), m_order(order) {
    std::ranges::sort(m_files, {}, &ListedFile::path);
    for (const auto& file : m_files) {
        m_expected_bytes += file.size;
    }
    m_expected_files = m_files.size();
}

void ListedSource::plan() {
    m_planned = true;
    const auto start = std::chrono::steady_clock::now();
    std::vector<LinkGroup> groups;
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::size_t> group_of_inode;
    for (std::size_t i = 0; i < m_files.size(); ++i) {
        const auto& file = m_files[i];
        if (file.links > 1) {
            const auto [it, first] =
                group_of_inode.try_emplace({file.device, file.stamp.inode}, groups.size());
            if (!first) {
                groups[it->second].links.push_back(i);
                continue;
            }
        }
        groups.push_back(LinkGroup{i, {}});
    }

    auto queue_group = [this](const LinkGroup& group, bool withheld) {
        FileEntry primary = entry_of(m_files[group.primary]);
        primary.bytes_withheld = withheld;
        primary.cache_asked = static_cast<bool>(m_want) && !primary.problem;
        const std::string primary_path = primary.path;
        m_queue.push_back(std::move(primary));
        for (const std::size_t link : group.links) {
            FileEntry entry = entry_of(m_files[link]);
            entry.hardlink_of = primary_path;
            m_queue.push_back(std::move(entry));
        }
    };
    std::vector<const LinkGroup*> wanted;
    for (const auto& group : groups) {
        bool want = true;
        if (m_want && !m_files[group.primary].problem) {
            try {
                want = m_want(entry_of(m_files[group.primary]));
            } catch (const std::exception& e) {
                spdlog::debug("deciding whether to read {} failed ({}); reading it",
                              m_files[group.primary].path, e.what());
            }
        }
        if (want) {
            wanted.push_back(&group);
        } else {
            queue_group(group, true);
        }
    }
    std::ranges::stable_sort(wanted, std::ranges::greater{},
                             [this](const LinkGroup* group) { return m_files[group->primary].size; });
    for (const LinkGroup* group : wanted) {
        queue_group(*group, false);
    }
    spdlog::debug("planned {} files ({} to read) in {:.3f} s", m_files.size(), wanted.size(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    m_files.clear();
    m_files.shrink_to_fit();
}

Expected<std::optional<FileEntry>> ListedSource::next() {
    if (!m_planned) {
        plan();
    }
    m_current.reset();
    if (m_queue.empty()) {
        return std::nullopt;
    }
    FileEntry entry = std::move(m_queue.front());
    m_queue.pop_front();
    if (!entry.bytes_withheld && !entry.hardlink_of) {
        m_current = entry.path;
    }
    return entry;
}

Expected<std::size_t> ListedSource::read_into(const std::string& path, std::uint64_t offset,
                                              std::span<std::byte> out) {
    std::size_t done = 0;
    while (done < out.size()) {
        const std::size_t want = std::min(out.size() - done, k_read_chunk);
        auto n = m_reads->pread(path, offset + done, out.subspan(done, want));
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n == 0) {
            break;
        }
        done += *n;
    }
    return done;
}

Expected<Content> ListedSource::read(const FileEntry& entry) {
    if (entry.bytes_withheld || entry.hardlink_of) {
        return make_error(Errc::invalid_argument, "a listed source does not read withheld entries or links");
    }
    if (entry.problem) {
        return std::unexpected(*entry.problem);
    }
    if (m_order == ReadOrder::random) {
        std::vector<std::byte> chunk; // per call: calls come from many threads
        return read_whole(entry, chunk);
    }
    if (!m_current || entry.path != *m_current) {
        return make_error(Errc::invalid_argument,
                          "a listed source reads only the wanted entry next() just returned, once");
    }
    m_current.reset();
    return read_whole(entry, m_chunk);
}

Expected<Content> ListedSource::read_whole(const FileEntry& entry, std::vector<std::byte>& chunk) {
    const std::uint64_t size = entry.size;
    auto short_read = [&entry](std::uint64_t got) {
        return make_error(Errc::io, "the reader delivered " + std::to_string(got) + " of " +
                                        std::to_string(entry.size) + " bytes");
    };
    if (size <= m_options.max_in_memory) {
        std::vector<std::byte> bytes(static_cast<std::size_t>(size));
        auto n = read_into(entry.path, 0, bytes);
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n != size) {
            return short_read(*n);
        }
        return Content::from_memory(std::move(bytes));
    }
    auto fd = create_spill_file(m_options.spill_dir);
    if (!fd) {
        return std::unexpected(fd.error());
    }
    chunk.resize(k_read_chunk);
    for (std::uint64_t done = 0; done < size;) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(k_read_chunk, size - done));
        auto n = read_into(entry.path, done, std::span(chunk).first(want));
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n == 0) {
            return short_read(done);
        }
        if (auto written = write_all(fd->get(), std::span(chunk).first(*n)); !written) {
            return std::unexpected(written.error());
        }
        done += *n;
    }
    return spilled_content(std::move(*fd), size);
}

} // namespace coldscan::disk::detail
