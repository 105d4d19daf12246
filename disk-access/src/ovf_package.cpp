// OVF 1.x/2.x descriptors: <References><File ovf:id ovf:href [ovf:compression] [ovf:chunkSize]/>,
// <DiskSection><Disk ovf:diskId ovf:fileRef ovf:format/>, and the virtual hardware's disk items
// (<rasd:ResourceType>17</rasd:ResourceType> with <rasd:HostResource>ovf:/disk/ID</rasd:HostResource>, or
// "/disk/ID" as older VirtualBox writes). Elements and attributes are matched by local name: exporters
// differ in namespace prefixes, not in names.
#include "coldscan/disk/ovf_package.hpp"

#include "coldscan/common/unique_fd.hpp"
#include "tar_reader.hpp"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <map>
#include <memory>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

namespace coldscan::disk {

namespace {

constexpr std::size_t k_max_descriptor = 16U << 20;
constexpr std::size_t k_max_members = 10'000;

template <auto Free> struct XmlDeleter {
    template <typename T> void operator()(T* p) const noexcept { Free(p); }
};
using XmlDoc = std::unique_ptr<xmlDoc, XmlDeleter<xmlFreeDoc>>;
using XmlParser = std::unique_ptr<xmlParserCtxt, XmlDeleter<xmlFreeParserCtxt>>;

bool is_element(const xmlNode* node, std::string_view name) {
    return node->type == XML_ELEMENT_NODE && name == reinterpret_cast<const char*>(node->name);
}

// An attribute by local name, whatever its namespace.
std::optional<std::string> attribute(const xmlNode* node, std::string_view name) {
    for (const xmlAttr* a = node->properties; a != nullptr; a = a->next) {
        if (name == reinterpret_cast<const char*>(a->name)) {
            xmlChar* value = xmlNodeGetContent(reinterpret_cast<const xmlNode*>(a));
            std::string text = value != nullptr ? reinterpret_cast<const char*>(value) : "";
            xmlFree(value);
            return text;
        }
    }
    return std::nullopt;
}

std::string text_of(const xmlNode* node) {
    xmlChar* value = xmlNodeGetContent(node);
    std::string text = value != nullptr ? reinterpret_cast<const char*>(value) : "";
    xmlFree(value);
    const auto first = text.find_first_not_of(" \t\r\n");
    const auto last = text.find_last_not_of(" \t\r\n");
    return first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
}

const xmlNode* child(const xmlNode* node, std::string_view name) {
    for (const xmlNode* c = node->children; c != nullptr; c = c->next) {
        if (is_element(c, name)) {
            return c;
        }
    }
    return nullptr;
}

std::unexpected<Error> bad(const std::string& why) {
    return make_error(Errc::invalid_argument, "OVF descriptor: " + why);
}

struct FileRef {
    std::string href;
};

// References: file id -> href, refusing what cannot be read in place.
Expected<std::map<std::string, FileRef>> references(const xmlNode* envelope) {
    std::map<std::string, FileRef> files;
    const xmlNode* refs = child(envelope, "References");
    for (const xmlNode* f = refs != nullptr ? refs->children : nullptr; f != nullptr; f = f->next) {
        if (!is_element(f, "File")) {
            continue;
        }
        const auto id = attribute(f, "id");
        const auto href = attribute(f, "href");
        if (!id || !href) {
            return bad("a File without an id or href");
        }
        if (href->empty() || href->find('/') != std::string::npos || *href == "." || *href == ".." ||
            href->find('\0') != std::string::npos) {
            return bad("the file name \"" + *href + "\" is not a plain file name");
        }
        if (attribute(f, "compression").value_or("identity") != "identity") {
            return bad(*href + " is compressed (" + *attribute(f, "compression") +
                       "), not readable in place");
        }
        if (attribute(f, "chunkSize")) {
            return bad(*href + " is split into chunks, not readable in place");
        }
        files[*id] = FileRef{*href};
    }
    return files;
}

std::optional<std::string> format_of(const std::string& url) {
    return url.find("vmdk") != std::string::npos ? std::optional<std::string>("vmdk") : std::nullopt;
}

// The disk ids the virtual hardware attaches, in its order.
std::vector<std::string> attached_disks(const xmlNode* envelope) {
    std::vector<std::string> ids;
    for (const xmlNode* system = envelope->children; system != nullptr; system = system->next) {
        if (!is_element(system, "VirtualSystem")) {
            continue;
        }
        const xmlNode* hardware = child(system, "VirtualHardwareSection");
        for (const xmlNode* item = hardware != nullptr ? hardware->children : nullptr; item != nullptr;
             item = item->next) {
            const xmlNode* resource = is_element(item, "Item") ? child(item, "HostResource") : nullptr;
            if (resource == nullptr) {
                continue;
            }
            const std::string host = text_of(resource);
            for (const std::string_view prefix : {"ovf:/disk/", "/disk/"}) {
                if (host.starts_with(prefix)) {
                    ids.push_back(host.substr(prefix.size()));
                }
            }
        }
    }
    return ids;
}

} // namespace

namespace detail {

Expected<std::vector<OvfDisk>> ovf_disks(std::string_view xml) {
    static std::once_flag once;
    std::call_once(once, [] { xmlInitParser(); });
    if (xml.size() > k_max_descriptor) {
        return bad("larger than 16 MiB");
    }
    const XmlParser parser(xmlNewParserCtxt());
    if (!parser) {
        return make_error(Errc::io, "OVF descriptor: cannot create an XML parser (out of memory)");
    }
    constexpr int k_options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    const XmlDoc doc(xmlCtxtReadMemory(parser.get(), xml.data(), static_cast<int>(xml.size()), "package.ovf",
                                       nullptr, k_options));
    if (!doc) {
        return bad("not well-formed XML");
    }
    if (doc->intSubset != nullptr || doc->extSubset != nullptr) {
        return bad("a DOCTYPE is not allowed");
    }
    const xmlNode* envelope = xmlDocGetRootElement(doc.get());
    if (envelope == nullptr || !is_element(envelope, "Envelope")) {
        return bad("the root element is not an OVF <Envelope>");
    }
    auto files = references(envelope);
    if (!files) {
        return std::unexpected(files.error());
    }
    std::vector<std::pair<std::string, OvfDisk>> disks; // by disk id, in the descriptor's order
    const xmlNode* section = child(envelope, "DiskSection");
    for (const xmlNode* d = section != nullptr ? section->children : nullptr; d != nullptr; d = d->next) {
        const auto file_ref = is_element(d, "Disk") ? attribute(d, "fileRef") : std::nullopt;
        if (!file_ref) {
            continue; // a blank disk the importer creates: no bytes to scan
        }
        const auto file = files->find(*file_ref);
        if (file == files->end()) {
            return bad("a disk refers to the unknown file " + *file_ref);
        }
        disks.emplace_back(attribute(d, "diskId").value_or(""),
                           OvfDisk{file->second.href, format_of(attribute(d, "format").value_or(""))});
    }
    std::vector<OvfDisk> ordered;
    for (const auto& id : attached_disks(envelope)) {
        const auto found = std::ranges::find(disks, id, &std::pair<std::string, OvfDisk>::first);
        if (found != disks.end()) {
            ordered.push_back(std::move(found->second));
            disks.erase(found);
        }
    }
    for (auto& [id, disk] : disks) {
        ordered.push_back(std::move(disk));
    }
    return ordered;
}

} // namespace detail

namespace {

struct Member {
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
};

// The tar's regular members by name (the top folder's), and the descriptor's text (the first member).
struct TarIndex {
    std::string descriptor;
    std::map<std::string, Member> members;
};

Expected<TarIndex> index_ova(const std::filesystem::path& path) {
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        return make_error(Errc::io, errno_message("cannot open " + path.string()));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return make_error(Errc::io, errno_message("cannot examine " + path.string()));
    }
    detail::TarReader tar(fd.get());
    TarIndex index;
    for (std::size_t count = 0;; ++count) {
        auto member = tar.next();
        if (!member) {
            return make_error(Errc::invalid_argument, path.string() + ": " + member.error().message);
        }
        if (!*member || count > k_max_members) {
            break;
        }
        const auto& m = **member;
        const std::uint64_t offset = tar.position();
        if (m.type != detail::TarMemberType::regular || offset > static_cast<std::uint64_t>(st.st_size) ||
            m.size > static_cast<std::uint64_t>(st.st_size) - offset) {
            continue; // a disk in it is missing below, by name
        }
        const std::string name = m.path.substr(m.path.find_last_of('/') + 1);
        if (count == 0 && name.ends_with(".ovf") && m.size <= k_max_descriptor) {
            index.descriptor.resize(static_cast<std::size_t>(m.size));
            std::size_t done = 0;
            while (done < index.descriptor.size()) {
                auto read = tar.read(std::as_writable_bytes(std::span(index.descriptor).subspan(done)));
                if (!read || *read == 0) {
                    return make_error(Errc::invalid_argument,
                                      path.string() + ": its OVF descriptor is cut short");
                }
                done += *read;
            }
        }
        if (m.path.find('/', 1) == std::string::npos) { // top-level members only, as OVF names them
            index.members.emplace(name, Member{offset, m.size});
        }
    }
    if (index.descriptor.empty()) {
        return make_error(Errc::invalid_argument,
                          path.string() + " is not an OVA: its first member is no .ovf");
    }
    return index;
}

Expected<std::string> read_small_file(const std::filesystem::path& path) {
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        return make_error(Errc::io, errno_message("cannot open " + path.string()));
    }
    std::string text;
    char buffer[65536];
    ssize_t n = 0;
    while ((n = ::read(fd.get(), buffer, sizeof buffer)) > 0) {
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > k_max_descriptor) {
            return make_error(Errc::invalid_argument, path.string() + " is larger than 16 MiB");
        }
    }
    if (n < 0) {
        return make_error(Errc::io, errno_message("cannot read " + path.string()));
    }
    return text;
}

bool starts_like_ova(const std::filesystem::path& path) {
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char header[512];
    if (fd.get() < 0 || ::pread(fd.get(), header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) {
        return false;
    }
    const std::string_view name(header, ::strnlen(header, 100));
    return std::string_view(header + 257, 5) == "ustar" && name.ends_with(".ovf");
}

} // namespace

bool is_ovf_package(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        return false;
    }
    return path.extension() == ".ovf" || starts_like_ova(path);
}

Expected<std::vector<PackageDisk>> package_disks(const std::filesystem::path& path) {
    const bool ova = path.extension() != ".ovf";
    TarIndex index;
    if (ova) {
        auto indexed = index_ova(path);
        if (!indexed) {
            return std::unexpected(indexed.error());
        }
        index = std::move(*indexed);
    } else if (auto text = read_small_file(path)) {
        index.descriptor = std::move(*text);
    } else {
        return std::unexpected(text.error());
    }
    auto disks = detail::ovf_disks(index.descriptor);
    if (!disks) {
        return make_error(disks.error().code, path.string() + ": " + disks.error().message);
    }
    if (disks->empty()) {
        return make_error(Errc::invalid_argument, path.string() + ": the OVF names no disk");
    }
    std::vector<PackageDisk> out;
    for (const auto& disk : *disks) {
        PackageDisk d{disk.href, path, 0, 0, disk.format};
        if (ova) {
            const auto member = index.members.find(disk.href);
            if (member == index.members.end() || member->second.size == 0) {
                return make_error(Errc::invalid_argument, path.string() + ": the OVF names " + disk.href +
                                                              ", which the package lacks");
            }
            d.offset = member->second.offset;
            d.length = member->second.size;
        } else {
            d.file = path.parent_path() / disk.href;
        }
        out.push_back(std::move(d));
    }
    return out;
}

} // namespace coldscan::disk
