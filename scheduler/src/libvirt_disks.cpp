// A domain's disks, from its XML or from a read-only libvirt connection.
//
// The XML comes from two places: libvirt itself (virDomainGetXMLDesc), and the qemu hook's stdin, which is
// only as trustworthy as whoever can define a domain or run the hook by hand. So the parser is set up for
// hostile input: no network (XML_PARSE_NONET), no external DTD or entity loading (no XML_PARSE_DTDLOAD,
// no XML_PARSE_NOENT), libxml2's default size and depth limits (no XML_PARSE_HUGE), and a document with a
// DOCTYPE is refused outright: libvirt never writes one, and without it there are no entities to expand.
//
// libvirt prints every error to stderr by default; that would go to the service's journal or into the gate's
// output. A no-op error function silences it, and each Error carries virGetLastErrorMessage() instead
// (libvirt keeps the last error per thread, so this is safe from any thread).
#include "coldscan/scheduler/libvirt_disks.hpp"

#include "coldscan/common/c_handle.hpp"

#include <algorithm>
#include <cstdlib>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::scheduler {
namespace {

// libvirt's own domain XML is a few KiB; anything this large is not a domain.
constexpr std::size_t k_max_xml_bytes = 16U << 20;

// xmlFree is a function pointer variable, so it cannot be a deleter's template argument itself.
void free_xml_string(xmlChar* text) noexcept {
    xmlFree(text);
}
void free_memory(void* memory) noexcept {
    std::free(memory);
}

// Every handle is made, used and freed by one call, on one thread.
using XmlDoc = CHandle<xmlDoc, xmlFreeDoc>;
using XmlParser = CHandle<xmlParserCtxt, xmlFreeParserCtxt>;
using XmlString = CHandle<xmlChar, free_xml_string>;
using VirConnection = CHandle<virConnect, virConnectClose>;
using VirDomain = CHandle<virDomain, virDomainFree>;
using MallocString = CHandle<char, free_memory>;        // virDomainGetXMLDesc's answer
using DomainArray = CHandle<virDomainPtr, free_memory>; // virConnectListAllDomains' array (not its domains)

// Once per process, from whichever thread comes first: libxml2's globals, and libvirt's silenced printing.
void initialise_libraries() {
    static std::once_flag once;
    std::call_once(once, [] {
        xmlInitParser();
        virSetErrorFunc(nullptr, [](void*, virErrorPtr) noexcept {});
    });
}

// How a URI reads in messages.
std::string uri_name(const std::string& uri) {
    return uri.empty() ? "libvirt's default URI" : uri;
}

std::string last_libvirt_error() {
    const char* message = virGetLastErrorMessage();
    return message != nullptr ? message : "unknown libvirt error";
}

bool is_element(const xmlNode* node, std::string_view name) {
    return node->type == XML_ELEMENT_NODE && node->name != nullptr &&
           std::string_view(reinterpret_cast<const char*>(node->name)) == name;
}

const xmlNode* first_child(const xmlNode* parent, std::string_view name) {
    for (const xmlNode* child = parent->children; child != nullptr; child = child->next) {
        if (is_element(child, name)) {
            return child;
        }
    }
    return nullptr;
}

// The attribute's value; nullopt when absent (or node is null).
std::optional<std::string> attribute(const xmlNode* node, const char* name) {
    if (node == nullptr) {
        return std::nullopt;
    }
    const XmlString value(xmlGetProp(node, reinterpret_cast<const xmlChar*>(name)));
    if (!value) {
        return std::nullopt;
    }
    return std::string(reinterpret_cast<const char*>(value.get()));
}

// Which <source> attribute names the disk, by <disk type=...> (libvirt's formatdomain "Hard drives").
const char* source_attribute(std::string_view kind) {
    if (kind == "file") {
        return "file";
    }
    if (kind == "block") {
        return "dev";
    }
    if (kind == "dir") {
        return "dir";
    }
    if (kind == "network") {
        return "name";
    }
    if (kind == "volume") {
        return "volume";
    }
    return nullptr; // nvme, vhostuser: no host path
}

DomainDisk read_disk(const xmlNode* disk) {
    DomainDisk result;
    // libvirt reads a <disk> without type= as a file.
    result.kind = attribute(disk, "type").value_or("file");
    if (const char* name = source_attribute(result.kind)) {
        result.source = attribute(first_child(disk, "source"), name).value_or("");
    }
    result.target = attribute(first_child(disk, "target"), "dev").value_or("");
    result.format = attribute(first_child(disk, "driver"), "type").value_or("");
    result.read_only = first_child(disk, "readonly") != nullptr;
    return result;
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    return text;
}

} // namespace

Expected<DomainDescription> describe_domain_xml(std::string_view xml) {
    initialise_libraries();
    if (xml.size() > k_max_xml_bytes) {
        return make_error(Errc::invalid_argument,
                          "domain XML: larger than " + std::to_string(k_max_xml_bytes >> 20) + " MiB");
    }
    const XmlParser parser(xmlNewParserCtxt());
    if (!parser) {
        return make_error(Errc::io, "domain XML: cannot create an XML parser (out of memory)");
    }
    constexpr int k_options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    const XmlDoc doc(xmlCtxtReadMemory(parser.get(), xml.data(), static_cast<int>(xml.size()), "domain.xml",
                                       nullptr, k_options));
    if (!doc) {
        const xmlError* error = xmlCtxtGetLastError(parser.get());
        std::string message = "domain XML: not well-formed";
        if (error != nullptr && error->message != nullptr) {
            message += " (line " + std::to_string(error->line) + ": " + trimmed(error->message) + ")";
        }
        return make_error(Errc::invalid_argument, std::move(message));
    }
    if (doc->intSubset != nullptr || doc->extSubset != nullptr) {
        return make_error(Errc::invalid_argument, "domain XML: a DOCTYPE is not allowed");
    }
    const xmlNode* root = xmlDocGetRootElement(doc.get());
    if (root == nullptr || !is_element(root, "domain")) {
        return make_error(Errc::invalid_argument, "domain XML: the root element is not <domain>");
    }
    DomainDescription domain;
    if (const xmlNode* name = first_child(root, "name")) {
        const XmlString text(xmlNodeGetContent(name));
        domain.name = text ? std::string(reinterpret_cast<const char*>(text.get())) : std::string();
    }
    auto& disks = domain.disks;
    for (const xmlNode* devices = root->children; devices != nullptr; devices = devices->next) {
        if (!is_element(devices, "devices")) {
            continue;
        }
        for (const xmlNode* node = devices->children; node != nullptr; node = node->next) {
            // device= is "disk" (the default), "cdrom", "floppy" or "lun".
            if (is_element(node, "disk") && attribute(node, "device").value_or("disk") == "disk") {
                disks.push_back(read_disk(node));
            }
        }
    }
    return domain;
}

Expected<std::vector<DomainDisk>> disks_from_domain_xml(std::string_view xml) {
    auto domain = describe_domain_xml(xml);
    if (!domain) {
        return std::unexpected(domain.error());
    }
    return std::move(domain->disks);
}

namespace {

void ignore_xml_message(void* /*context*/, const char* /*format*/, ...) noexcept {}

// While it lives, libxml2's warnings on this thread go nowhere: libvirt's test driver parses its node file
// with libxml2 and leaves warnings ("failed to load external entity" for a missing file) to libxml2's
// default printer. libvirt's own message says the same.
class QuietXmlWarnings {
public:
    QuietXmlWarnings() : m_handler(xmlGenericError), m_context(xmlGenericErrorContext) {
        xmlSetGenericErrorFunc(nullptr, ignore_xml_message);
    }
    ~QuietXmlWarnings() { xmlSetGenericErrorFunc(m_context, m_handler); }
    QuietXmlWarnings(const QuietXmlWarnings&) = delete;
    QuietXmlWarnings& operator=(const QuietXmlWarnings&) = delete;

private:
    xmlGenericErrorFunc m_handler;
    void* m_context;
};

Expected<VirConnection> connect_read_only(const std::string& uri) {
    initialise_libraries();
    const QuietXmlWarnings quiet;
    VirConnection connection(virConnectOpenReadOnly(uri.empty() ? nullptr : uri.c_str()));
    if (!connection) {
        return make_error(Errc::io,
                          "libvirt: cannot connect to " + uri_name(uri) + ": " + last_libvirt_error());
    }
    return connection;
}

} // namespace

Expected<std::vector<DomainDisk>> domain_disks(const std::string& uri, const std::string& domain) {
    auto connection = connect_read_only(uri);
    if (!connection) {
        return std::unexpected(std::move(connection.error()));
    }
    const VirDomain dom(virDomainLookupByName(connection->get(), domain.c_str()));
    if (!dom) {
        if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) {
            return make_error(Errc::not_found,
                              "libvirt: no domain named \"" + domain + "\" on " + uri_name(uri));
        }
        return make_error(Errc::io, "libvirt: cannot look up domain \"" + domain + "\" on " + uri_name(uri) +
                                        ": " + last_libvirt_error());
    }
    const MallocString xml(virDomainGetXMLDesc(dom.get(), 0));
    if (!xml) {
        return make_error(Errc::io, "libvirt: cannot read the XML of domain \"" + domain + "\" on " +
                                        uri_name(uri) + ": " + last_libvirt_error());
    }
    auto disks = disks_from_domain_xml(xml.get());
    if (!disks) {
        return make_error(Errc::io, "libvirt: domain \"" + domain + "\" on " + uri_name(uri) + ": " +
                                        disks.error().message);
    }
    return disks;
}

Expected<std::vector<std::string>> list_domains(const std::string& uri) {
    auto connection = connect_read_only(uri);
    if (!connection) {
        return std::unexpected(std::move(connection.error()));
    }
    virDomainPtr* listed = nullptr;
    const int count = virConnectListAllDomains(connection->get(), &listed, 0);
    if (count < 0) {
        return make_error(Errc::io, "libvirt: cannot list the domains on " + uri_name(uri) + ": " +
                                        last_libvirt_error());
    }
    const DomainArray array(listed);
    std::vector<std::string> names;
    names.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        const VirDomain dom(array.get()[i]); // freed at the end of each turn
        if (const char* name = virDomainGetName(dom.get())) {
            names.emplace_back(name);
        }
    }
    std::ranges::sort(names);
    return names;
}

} // namespace coldscan::scheduler
