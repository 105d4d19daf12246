#include "coldscan/scanner/image_state.hpp"

#include "coldscan/common/read_fully.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <span>
#include <sys/stat.h>

namespace coldscan::scanner {
namespace {

std::int64_t nanoseconds(const timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

LayerState stat_layer(const std::filesystem::path& path) {
    LayerState state;
    state.path = path;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        state.error = errno;
        return state;
    }
    state.device = static_cast<std::uint64_t>(st.st_dev);
    state.inode = static_cast<std::uint64_t>(st.st_ino);
    state.size = static_cast<std::uint64_t>(st.st_size);
    state.mtime_ns = nanoseconds(st.st_mtim);
    state.ctime_ns = nanoseconds(st.st_ctim);
    return state;
}

std::string fingerprint(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        return {};
    }
    std::string head(k_fingerprint_bytes, '\0');
    int error = 0;
    head.resize(read_fully(fd.get(), 0, std::as_writable_bytes(std::span(head)), error));
    if (error != 0) {
        return {};
    }
    return sha256_hex(head);
}

} // namespace

ImageState capture_image_state(const std::vector<std::filesystem::path>& layers) {
    ImageState state;
    state.layers.reserve(layers.size());
    for (const auto& layer : layers) {
        state.layers.push_back(stat_layer(layer));
    }
    if (!layers.empty()) {
        state.top_fingerprint = fingerprint(layers.front());
    }
    return state;
}

std::optional<std::string> describe_change(const ImageState& before, const ImageState& after) {
    std::string text;
    const auto add = [&](const std::filesystem::path& path, const std::string& what) {
        text += (text.empty() ? "" : "; ") + path.string() + ": " + what;
    };
    if (before.layers.size() != after.layers.size()) {
        add(before.layers.empty() ? std::filesystem::path("the image") : before.layers.front().path,
            "the chain has " + std::to_string(after.layers.size()) + " layers, it had " +
                std::to_string(before.layers.size()));
    }
    const bool top_rewritten = !before.layers.empty() && before.top_fingerprint != after.top_fingerprint;
    for (std::size_t i = 0; i < before.layers.size() && i < after.layers.size(); ++i) {
        const LayerState& b = before.layers[i];
        const LayerState& a = after.layers[i];
        if (b == a && !(i == 0 && top_rewritten)) {
            continue;
        }
        if (a.error != 0 || b.error != 0) {
            add(b.path, a.error != 0
                            ? std::string("cannot be examined any more (") + std::strerror(a.error) + ")"
                            : "can be examined now, not before");
            continue;
        }
        std::vector<std::string> changes;
        if (a.device != b.device || a.inode != b.inode) {
            changes.emplace_back("replaced by another file (device/inode)");
        }
        if (a.size != b.size) {
            changes.push_back("size " + std::to_string(b.size) + " -> " + std::to_string(a.size));
        }
        if (a.mtime_ns != b.mtime_ns) {
            changes.emplace_back("modified (mtime)");
        }
        if (a.ctime_ns != b.ctime_ns) {
            changes.emplace_back("changed (ctime)");
        }
        if (i == 0 && top_rewritten) {
            changes.emplace_back("its first MiB differs");
        }
        std::string joined;
        for (const auto& change : changes) {
            joined += (joined.empty() ? "" : ", ") + change;
        }
        add(b.path, joined);
    }
    if (text.empty()) {
        return std::nullopt;
    }
    return text;
}

} // namespace coldscan::scanner
