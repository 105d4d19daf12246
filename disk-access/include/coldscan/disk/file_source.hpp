// The message-shaped boundary between the pipeline and the filesystem readers (untrusted data parsers):
// a source yields FileEntry records and, on request, each file's Content. A later issue moves sources into
// sandboxed worker processes; keep everything crossing this boundary plain data.
#pragma once

#include "coldscan/common/content.hpp"
#include "coldscan/common/error.hpp"
#include "coldscan/common/read_throttle.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace coldscan::disk {

// What tells one version of a file from another within its filesystem, as the source's own stat() saw it
// (never from archive headers): the verdict cache's level-1 key, with the image and filesystem identity.
struct FileStamp {
    std::uint64_t inode = 0;
    std::uint64_t generation = 0; // 0 where the source cannot see it
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
};

struct FileEntry {
    std::string path;       // absolute inside the filesystem ("/etc/passwd"); raw guest bytes, not escaped
    std::uint64_t size = 0; // bytes
    std::int64_t mtime = 0; // seconds since the epoch, 0 when unknown
    std::optional<FileStamp> stamp;
    std::optional<std::string> hardlink_of; // an earlier entry's path with the same inode: not read again
    std::optional<Error> problem;           // the file exists but cannot be read: it gets ERROR(problem)
    bool bytes_withheld = false;            // WantBytes said the bytes are not needed: read() refuses it
    // Names the exact disk blocks the bytes come from (the direct path: the identity of the image layers
    // holding them plus the file's data runs). Equal keys mean equal bytes whatever the guest's metadata
    // says, so a verdict cached under it needs no guest timestamp. Empty when the source cannot tell.
    std::optional<std::string> block_key;
    bool cache_asked =
        false; // WantBytes was asked about it and wanted the bytes: no need to look it up again
};

// Asked once per regular file (not per hard link), before any of its bytes move, by sources that list
// identities first: false when the caller can do without the bytes (the verdict cache knows the file). Such
// entries come back with bytes_withheld set. Sources that cannot list first ignore it.
using WantBytes = std::function<bool(const FileEntry&)>;

enum class ReadOrder {
    sequential, // read() only for the entry next() just returned, before calling next() again
    random,     // read() for any entry, from any thread
};

// Thread rule: next() from one thread at a time; read() as read_order() says.
class FileSource {
public:
    virtual ~FileSource() = default;
    // The next regular file (or hard link to one); std::nullopt at the end. An error ends the filesystem:
    // entries already returned stand, and the source reports every file it had listed but not yet returned
    // as entries with a problem before that, so nothing is dropped silently.
    [[nodiscard]] virtual Expected<std::optional<FileEntry>> next() = 0;
    [[nodiscard]] virtual ReadOrder read_order() const noexcept = 0;
    // The entry's bytes. Error: the file gets ERROR(reason); the source continues.
    [[nodiscard]] virtual Expected<Content> read(const FileEntry& entry) = 0;
    // Bytes and files of regular content this source expects to deliver (for progress and ETA), if known.
    [[nodiscard]] virtual std::optional<std::uint64_t> expected_bytes() const { return std::nullopt; }
    [[nodiscard]] virtual std::optional<std::uint64_t> expected_files() const { return std::nullopt; }
};

struct SourceOptions {
    // A sequential source holds files up to this size in memory; bigger ones are streamed into an unlinked
    // temporary file under spill_dir, so a big file never sits whole in memory.
    std::uint64_t max_in_memory = 32ULL << 20;
    std::string spill_dir = "/var/tmp";
    // A streaming source that receives nothing for this long treats its producer as hung: the stream fails
    // (the files not delivered are reported) and the producer is stopped. Zero: wait forever.
    std::chrono::seconds stall_timeout{600};
    // The job's read budget (the scan service), asked before each appliance read; none: full speed.
    std::shared_ptr<ReadThrottle> throttle;
};

} // namespace coldscan::disk
