// The image safety gate.
//
// A disk image is a pointer-rich file: qcow2, vmdk and friends name backing files, external data files and
// extents by path, and qemu opens whatever they name. An image from an untrusted VM or backup can therefore
// make the scanner read any host file (/etc/shadow as a "backing layer"), reach the network (nbd:// or
// json: references) or loop forever. So before anything opens the whole chain, every layer is probed on its
// own with `qemu-img info` (which does not open backing files), each reference is resolved the way qemu
// resolves it, canonicalised (symlinks followed) and required to stay inside the allowed roots: the top
// image's own folder plus the roots the admin allowed. Only then does `qemu-img check` look at each layer's
// metadata, so a truncated or corrupt image is refused here with a clear message rather than failing in
// obscure ways inside the appliance.
//
// qemu-img runs under CPU, memory and wall-clock limits: its parsers see hostile bytes too.
#include "coldscan/disk/image_probe.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/unique_fd.hpp"
#include "qemu_file_view.hpp"
#include "raw_layout_check.hpp"
#include "vmdk_descriptor.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace coldscan::disk {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::array<std::string_view, 7> k_formats = {"qcow2", "vmdk", "vhdx", "vdi", "vpc", "qed", "raw"};
// Formats whose metadata `qemu-img check` verifies (it says "not supported" for the others).
constexpr std::array<std::string_view, 5> k_checkable = {"qcow2", "qed", "vmdk", "vhdx", "vdi"};

ProcessLimits info_limits() {
    ProcessLimits limits;
    limits.cpu_time = std::chrono::seconds(10);
    limits.address_space_bytes = 1ULL << 30;
    limits.wall_time = std::chrono::seconds(30);
    limits.max_output_bytes = 4U << 20;
    return limits;
}

ProcessLimits check_limits() {
    // check walks all metadata (L2 and refcount tables): allow more time for big images.
    ProcessLimits limits;
    limits.cpu_time = std::chrono::seconds(60);
    limits.address_space_bytes = 1ULL << 30;
    limits.wall_time = std::chrono::seconds(120);
    limits.max_output_bytes = 16U << 20;
    return limits;
}

// Why a bounded qemu-img died of a signal: RLIMIT_CPU sends SIGXCPU (then SIGKILL at the hard limit); a
// failed allocation under RLIMIT_AS ends in glib's abort() or, for a stack or mmap, in SIGSEGV/SIGBUS.
std::string stopped_by(int signal, const ProcessLimits& limits) {
    const char* abbrev = ::sigabbrev_np(signal);
    const std::string name =
        "signal " + std::to_string(signal) + (abbrev != nullptr ? std::string(" (SIG") + abbrev + ")" : "");
    if (signal == SIGXCPU || signal == SIGKILL) {
        return "was killed by " + name + ": it ran past its CPU time limit of " +
               std::to_string(limits.cpu_time.count()) + " s";
    }
    if (signal == SIGABRT || signal == SIGSEGV || signal == SIGBUS) {
        return "was stopped by " + name + ": it most likely ran past its memory limit of " +
               std::to_string(limits.address_space_bytes >> 20) + " MiB";
    }
    return "was stopped by " + name;
}

std::string in_quotes(std::string_view text) {
    return "'" + std::string(text) + "'";
}

std::string trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(" \t\r\n");
    return std::string(text.substr(first, last - first + 1));
}

// qemu-img's stderr as one message: "qemu-img: " prefixes dropped, lines joined, capped.
std::string qemu_message(std::string_view err) {
    std::string message;
    std::size_t lines = 0;
    while (!err.empty() && lines < 4) {
        const auto end = err.find('\n');
        std::string line = trim(err.substr(0, end));
        err = end == std::string_view::npos ? std::string_view{} : err.substr(end + 1);
        if (line.starts_with("qemu-img: ")) {
            line.erase(0, 10);
        }
        if (line.empty()) {
            continue;
        }
        if (!message.empty()) {
            message += "; ";
        }
        message += line;
        ++lines;
    }
    return message.empty() ? "no message" : message;
}

bool mentions_truncation(std::string_view message) {
    return message.find("truncated") != std::string_view::npos ||
           message.find("after end of file") != std::string_view::npos ||
           message.find("after EOF") != std::string_view::npos ||
           message.find("beyond the end") != std::string_view::npos;
}

std::optional<std::string> string_at(const json& object, const char* key) {
    if (!object.is_object()) {
        return std::nullopt;
    }
    const auto it = object.find(key);
    if (it == object.end() || !it->is_string()) {
        return std::nullopt;
    }
    return it->get<std::string>();
}

std::optional<std::uint64_t> unsigned_at(const json& object, const char* key) {
    if (!object.is_object()) {
        return std::nullopt;
    }
    const auto it = object.find(key);
    if (it == object.end() || !it->is_number_unsigned()) {
        return std::nullopt;
    }
    return it->get<std::uint64_t>();
}

// How qemu decides a name is not a plain file (path_has_protocol): a ':' before the first '/'.
bool is_protocol_reference(std::string_view reference) {
    if (reference.starts_with("json:") || reference.find("://") != std::string_view::npos) {
        return true;
    }
    const auto special = reference.find_first_of(":/");
    return special != std::string_view::npos && reference[special] == ':';
}

bool is_within(const fs::path& path, const fs::path& root) {
    const auto [root_end, ignored] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
    return root_end == root.end();
}

std::string roots_text(const std::vector<fs::path>& roots) {
    std::string text;
    for (const auto& root : roots) {
        if (!text.empty()) {
            text += ", ";
        }
        text += root.string();
    }
    return text;
}

struct Gate {
    std::vector<fs::path> roots;

    // Resolves a file reference of `image` (relative to the image's folder), canonicalises it and checks
    // that it is an existing regular file inside the roots. `what` is "backing file", "external data file"..
    Expected<fs::path> resolve(const std::string& reference, const fs::path& image,
                               std::string_view what) const {
        const std::string subject = std::string(what) + " " + in_quotes(reference) + " of " + image.string();
        if (reference.empty()) {
            return make_error(Errc::unsafe_image, subject + " is empty");
        }
        if (is_protocol_reference(reference)) {
            return make_error(Errc::unsafe_image,
                              subject + " is a protocol or json: reference, which coldscan never opens");
        }
        const fs::path raw(reference);
        const fs::path combined = raw.is_absolute() ? raw : image.parent_path() / raw;
        std::error_code ec;
        const fs::path canonical = fs::weakly_canonical(combined, ec);
        if (ec) {
            return make_error(Errc::unsafe_image, subject + " cannot be resolved: " + ec.message());
        }
        if (std::none_of(roots.begin(), roots.end(),
                         [&](const fs::path& root) { return is_within(canonical, root); })) {
            return make_error(Errc::unsafe_image, subject + " resolves to " + canonical.string() +
                                                      " which is outside the allowed roots (" +
                                                      roots_text(roots) +
                                                      "); use --allow-root DIR to allow it");
        }
        struct stat st {};
        if (::stat(canonical.c_str(), &st) != 0) {
            if (errno == ENOENT || errno == ENOTDIR) {
                return make_error(Errc::unsafe_image,
                                  subject + " does not exist (" + canonical.string() + ")");
            }
            return make_error(Errc::unsafe_image, errno_message(subject + " cannot be examined"));
        }
        if (!S_ISREG(st.st_mode)) {
            return make_error(Errc::unsafe_image,
                              subject + " (" + canonical.string() + ") is not a regular file");
        }
        return canonical;
    }
};

// Reads the roots and nothing else of the host (qemu_file_view.hpp).
ProcessLimits confined(ProcessLimits limits, const std::vector<fs::path>& roots) {
    limits.file_view = detail::qemu_file_view(roots, {});
    return limits;
}

// The slice [offset, offset + length) of a file as qemu's raw driver gives it (a disk inside an OVA).
json slice_spec(const fs::path& file, std::uint64_t offset, std::uint64_t length) {
    return {{"driver", "raw"},
            {"offset", offset},
            {"size", length},
            {"file", {{"driver", "file"}, {"filename", file.string()}}}};
}

Expected<json> run_info(const fs::path& layer, const std::optional<std::string>& format,
                        const std::vector<fs::path>& roots, const ImageLayer* slice = nullptr) {
    std::vector<std::string> argv = {"qemu-img", "info", "--output=json", "-U"};
    if (slice != nullptr) {
        json spec = {{"file", slice_spec(layer, slice->offset, slice->length)}};
        if (format) {
            spec["driver"] = *format;
        }
        argv.insert(argv.end(), {"--", "json:" + spec.dump()});
    } else {
        if (format) {
            argv.insert(argv.end(), {"-f", *format});
        }
        argv.insert(argv.end(), {"--", layer.string()});
    }
    auto result = run_bounded(argv, confined(info_limits(), roots));
    if (!result) {
        const Errc code = result.error().code == Errc::timeout ? Errc::timeout : Errc::io;
        return make_error(code, "qemu-img info on " + layer.string() + ": " + result.error().message);
    }
    if (result->term_signal != 0) {
        return make_error(Errc::unsafe_image, "qemu-img info on " + layer.string() + " " +
                                                  stopped_by(result->term_signal, info_limits()));
    }
    if (result->exit_code != 0) {
        const std::string message = qemu_message(result->err);
        if (mentions_truncation(message)) {
            return make_error(Errc::invalid_argument, layer.string() + " is damaged: " + message);
        }
        return make_error(Errc::invalid_argument,
                          layer.string() + " is not a disk image coldscan can open: " + message);
    }
    json parsed = json::parse(result->out, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
        return make_error(Errc::invalid_argument,
                          "qemu-img info gave unreadable output for " + layer.string());
    }
    return parsed;
}

// Refuses a layer whose metadata qemu-img check finds damaged. The layer is checked alone (backing: null);
// its data file, if any, has been validated before.
Expected<void> run_check(const ImageLayer& layer, const std::vector<fs::path>& roots) {
    const json file = layer.length != 0 ? slice_spec(layer.path, layer.offset, layer.length)
                                        : json{{"driver", "file"}, {"filename", layer.path.string()}};
    const json spec = {{"driver", layer.format}, {"file", file}, {"backing", nullptr}};
    const std::vector<std::string> argv = {"qemu-img", "check", "-U", "--output=json", "json:" + spec.dump()};
    auto result = run_bounded(argv, confined(check_limits(), roots));
    const std::string name = layer.path.string();
    if (!result) {
        const Errc code = result.error().code == Errc::timeout ? Errc::timeout : Errc::io;
        return make_error(code, "qemu-img check on " + name + ": " + result.error().message);
    }
    if (result->term_signal != 0) {
        return make_error(Errc::unsafe_image, "qemu-img check on " + name + " " +
                                                  stopped_by(result->term_signal, check_limits()));
    }
    const json report = json::parse(result->out, nullptr, /*allow_exceptions=*/false);
    const auto corruptions = unsigned_at(report, "corruptions").value_or(0);
    const auto check_errors = unsigned_at(report, "check-errors").value_or(0);
    switch (result->exit_code) {
    case 0:
    case 3: // leaked clusters only: harmless for reading
        if (corruptions == 0 && check_errors == 0) {
            if (result->exit_code == 3) {
                spdlog::debug("{}: qemu-img check found leaked clusters (harmless for reading)", name);
            }
            return {};
        }
        break;
    case 63:
        return {}; // this format has no check
    default:
        break;
    }
    // The first complaint is enough: a truncated image yields one line per cluster.
    const std::string first = qemu_message(result->err.substr(0, result->err.find('\n')));
    const std::string message = corruptions > 0 ? "qemu-img check found " + std::to_string(corruptions) +
                                                      " corruptions, the first: " + first
                                                : first;
    return make_error(Errc::invalid_argument, name + " is damaged: " + message);
}

std::uint64_t host_size(const fs::path& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// --- VMDK extents, checked before qemu-img sees the file ---------------------------------------------
// Unlike backing files, `qemu-img info` opens a VMDK's extents while probing it, so a hostile descriptor
// could make it open any host file before the JSON answer can be checked. The descriptor is therefore read
// here first, exactly as qemu reads it (first MiB, up to the first NUL, the extent sscanf from every line
// start), and every extent it names must pass the gate.

constexpr int k_max_vmdk_nesting = 4;

Expected<void> precheck_vmdk_extents(const fs::path& file, bool as_vmdk, const Gate& gate, int depth = 0) {
    const auto descriptor = detail::vmdk_descriptor(file, as_vmdk);
    if (!descriptor) {
        return {};
    }
    if (depth > k_max_vmdk_nesting) {
        return make_error(Errc::unsafe_image, file.string() + " nests VMDK descriptors too deeply");
    }
    for (const auto& name : detail::vmdk_extent_names(*descriptor)) {
        auto extent = gate.resolve(name, file, "extent");
        if (!extent) {
            return std::unexpected(extent.error());
        }
        // A sparse extent may carry a descriptor of its own.
        if (*extent != file) {
            if (auto nested = precheck_vmdk_extents(*extent, false, gate, depth + 1); !nested) {
                return nested;
            }
        }
    }
    return {};
}

// External files a layer pulls in besides its backing file: qcow2 data files and vmdk extents.
Expected<void> check_attached_files(const json& info, const fs::path& layer, const Gate& gate) {
    const auto specific = info.find("format-specific");
    if (specific == info.end() || !specific->is_object()) {
        return {};
    }
    const auto data = specific->find("data");
    if (data == specific->end() || !data->is_object()) {
        return {};
    }
    if (const auto data_file = string_at(*data, "data-file")) {
        if (!fs::path(*data_file).is_absolute() && !is_protocol_reference(*data_file)) {
            // qemu opens a relative data file against its own working folder, not the image's folder, so
            // what would be opened cannot be validated.
            return make_error(Errc::unsafe_image, "external data file " + in_quotes(*data_file) + " of " +
                                                      layer.string() +
                                                      " is a relative path, which qemu resolves against its "
                                                      "working folder rather than the image's");
        }
        if (auto resolved = gate.resolve(*data_file, layer, "external data file"); !resolved) {
            return std::unexpected(resolved.error());
        }
    }
    const auto extents = data->find("extents");
    if (extents != data->end() && extents->is_array()) {
        for (const auto& extent : *extents) {
            const auto filename = string_at(extent, "filename");
            if (!filename) {
                continue;
            }
            if (auto resolved = gate.resolve(*filename, layer, "extent"); !resolved) {
                return std::unexpected(resolved.error());
            }
        }
    }
    return {};
}

} // namespace

// A disk inside a package is read in place: nothing it names may be opened. Before qemu-img sees it, a VMDK
// text descriptor (which names extent files beside the package) is refused; after, a backing file, a data
// file or an extent other than the slice itself.
Expected<void> precheck_slice(const fs::path& file, const ProbeOptions& options) {
    std::string head(512, '\0');
    const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    const ssize_t n =
        !fd ? -1 : ::pread(fd.get(), head.data(), head.size(), static_cast<off_t>(options.offset));
    if (n < 0) {
        return make_error(Errc::io, errno_message("cannot read " + file.string()));
    }
    head.resize(static_cast<std::size_t>(n));
    if (head.find("createType") != std::string::npos || head.starts_with("# Disk DescriptorFile")) {
        return make_error(Errc::unsafe_image, file.string() +
                                                  ": a VMDK descriptor inside a package names "
                                                  "extent files outside it; coldscan does not open it");
    }
    return {};
}

Expected<void> check_slice(const json& info, const ImageLayer& layer) {
    const std::string name = layer.path.string() + " at byte " + std::to_string(layer.offset);
    if (info.contains("backing-filename") || info.contains("full-backing-filename")) {
        return make_error(Errc::unsafe_image, name + ": a disk inside a package has a backing file");
    }
    const auto specific = info.find("format-specific");
    const json* data = specific != info.end() && specific->is_object() && specific->contains("data")
                           ? &specific->at("data")
                           : nullptr;
    if (data != nullptr && data->is_object()) {
        if (data->contains("data-file")) {
            return make_error(Errc::unsafe_image,
                              name + ": a disk inside a package has an external data file");
        }
        if (data->contains("extents") &&
            (!data->at("extents").is_array() || data->at("extents").size() > 1)) {
            return make_error(Errc::unsafe_image, name + ": a VMDK inside a package has several extents");
        }
    }
    return {};
}

bool is_supported_format(std::string_view format) {
    return std::find(k_formats.begin(), k_formats.end(), format) != k_formats.end();
}

Expected<ImageInfo> probe_image(const std::filesystem::path& image, const ProbeOptions& options) {
    if (options.format && !is_supported_format(*options.format)) {
        return make_error(Errc::invalid_argument, "unsupported format '" + *options.format +
                                                      "' (coldscan opens qcow2, vmdk, vhdx, vdi, "
                                                      "vpc, qed and raw)");
    }
    struct stat st {};
    if (::stat(image.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return make_error(Errc::not_found, image.string() + " does not exist");
        }
        return make_error(Errc::io, errno_message("cannot examine " + image.string()));
    }
    if (!S_ISREG(st.st_mode)) {
        return make_error(Errc::invalid_argument, image.string() + " is not a regular file");
    }
    const bool slice = options.length != 0;
    if (slice && (options.offset > static_cast<std::uint64_t>(st.st_size) ||
                  options.length > static_cast<std::uint64_t>(st.st_size) - options.offset)) {
        return make_error(Errc::invalid_argument,
                          image.string() + ": the disk's bytes lie past the file's end");
    }
    std::error_code ec;
    const fs::path top = fs::canonical(image, ec);
    if (ec) {
        return make_error(Errc::io, "cannot resolve " + image.string() + ": " + ec.message());
    }

    Gate gate;
    gate.roots.push_back(top.parent_path());
    for (const auto& root : options.allowed_roots) {
        const fs::path canonical = fs::canonical(root, ec);
        if (ec || !fs::is_directory(canonical)) {
            return make_error(Errc::invalid_argument,
                              "allowed root " + root.string() + " is not an existing folder");
        }
        if (std::find(gate.roots.begin(), gate.roots.end(), canonical) == gate.roots.end()) {
            gate.roots.push_back(canonical);
        }
    }

    ImageInfo info;
    info.path = image;
    std::set<fs::path> visited;
    fs::path current = top;
    std::optional<std::string> format = options.format;
    for (;;) {
        if (!visited.insert(current).second) {
            return make_error(Errc::unsafe_image, "the backing chain of " + image.string() +
                                                      " loops back to " + current.string());
        }
        if (info.chain.size() >= k_max_backing_depth) {
            return make_error(Errc::unsafe_image, "the backing chain of " + image.string() +
                                                      " is longer than " +
                                                      std::to_string(k_max_backing_depth) + " layers");
        }
        ImageLayer layer;
        layer.path = current;
        if (slice) {
            layer.offset = options.offset;
            layer.length = options.length;
            if (auto checked = precheck_slice(current, options); !checked) {
                return std::unexpected(checked.error());
            }
        } else if (!format || *format == "vmdk") {
            if (auto extents = precheck_vmdk_extents(current, format.has_value(), gate); !extents) {
                return std::unexpected(extents.error());
            }
        }
        auto layer_info = run_info(current, format, gate.roots, slice ? &layer : nullptr);
        if (!layer_info) {
            return std::unexpected(layer_info.error());
        }
        const json& j = *layer_info;
        layer.format = string_at(j, "format").value_or("");
        if (!is_supported_format(layer.format)) {
            return make_error(Errc::invalid_argument, current.string() + " is a '" + layer.format +
                                                          "' image, which coldscan does not open");
        }
        if (!format && layer.format == "raw" && !slice) {
            // qemu-img calls anything it cannot identify raw: without a layout at the start, this is more
            // likely a wrong file than a disk, and it should not cost an appliance launch to find out.
            auto looks_like_disk = file_starts_like_a_disk(current);
            if (!looks_like_disk) {
                return std::unexpected(looks_like_disk.error());
            }
            if (!*looks_like_disk) {
                return make_error(Errc::invalid_argument,
                                  current.string() +
                                      " is not a disk image: it has no image format, partition "
                                      "table or filesystem that coldscan knows (give --format raw "
                                      "to scan it as a raw disk anyway)");
            }
        }
        layer.virtual_size = unsigned_at(j, "virtual-size").value_or(0);
        layer.file_size = slice ? options.length : host_size(current);
        if (auto attached = slice ? check_slice(j, layer) : check_attached_files(j, current, gate);
            !attached) {
            return std::unexpected(attached.error());
        }
        const auto reference = string_at(j, "backing-filename");
        const auto full_reference = string_at(j, "full-backing-filename");
        if (!reference && !full_reference) {
            info.chain.push_back(std::move(layer));
            break;
        }
        layer.backing_reference = reference.value_or(*full_reference);
        auto backing = gate.resolve(layer.backing_reference, current, "backing file");
        if (!backing) {
            if (info.chain.empty() && !options.format) {
                // A raw disk whose first bytes happen to (or were made to) look like an image header: only
                // the admin knows which it is.
                return make_error(backing.error().code,
                                  backing.error().message + " (" + current.string() + " was detected as " +
                                      layer.format +
                                      "; if it is a raw disk, give its format (--format raw) to scan it "
                                      "as raw)");
            }
            return std::unexpected(backing.error());
        }
        if (full_reference && *full_reference != layer.backing_reference) {
            // qemu's own resolution must land on the same file.
            auto qemu_backing = gate.resolve(*full_reference, current, "backing file");
            if (!qemu_backing) {
                return std::unexpected(qemu_backing.error());
            }
            if (*qemu_backing != *backing) {
                return make_error(Errc::unsafe_image, "backing file " + in_quotes(layer.backing_reference) +
                                                          " of " + current.string() + " resolves to " +
                                                          backing->string() + " but qemu resolves it to " +
                                                          qemu_backing->string());
            }
        }
        format = string_at(j, "backing-filename-format");
        if (format && !is_supported_format(*format)) {
            return make_error(Errc::invalid_argument, "backing file " + backing->string() + " of " +
                                                          current.string() + " is recorded as format '" +
                                                          *format + "', which coldscan does not open");
        }
        if (!format) {
            spdlog::debug("{}: backing file {} has no recorded format; probing its format as qemu will",
                          current.string(), backing->string());
        }
        info.chain.push_back(std::move(layer));
        current = std::move(*backing);
    }

    // Every file of the chain is known to be inside the roots: now qemu-img check may open the layers.
    for (const auto& layer : info.chain) {
        if (std::find(k_checkable.begin(), k_checkable.end(), layer.format) == k_checkable.end()) {
            continue;
        }
        if (auto checked = run_check(layer, gate.roots); !checked) {
            return std::unexpected(checked.error());
        }
    }
    info.format = info.chain.front().format;
    info.virtual_size = info.chain.front().virtual_size;
    info.allowed_roots = gate.roots;
    return info;
}

std::vector<fs::path> image_read_roots(const ImageInfo& image) {
    if (!image.allowed_roots.empty()) {
        return image.allowed_roots;
    }
    std::vector<fs::path> roots;
    for (const auto& layer : image.chain) {
        roots.push_back(layer.path.parent_path());
    }
    if (roots.empty()) {
        roots.push_back(image.path.parent_path());
    }
    return roots;
}

} // namespace coldscan::disk
