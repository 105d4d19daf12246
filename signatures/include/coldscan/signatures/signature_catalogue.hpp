// What a ClamAV database holds, line by line, without loading it into an engine (docs/signature-updates.md):
// the engine part, whose change forces a full rescan (bytecode, file types, dynamic configuration, trust
// rules, and anything not known to be a detection line), and the detection lines by kind. `.cvd`, `.cld` and
// `.cud` containers are unpacked in memory (gzip-compressed or plain tar after their 512-byte header), so a
// database rewritten as another container, or updated by a `.cdiff` to the same content, has the same
// catalogue.
// Thread rule: free functions; a catalogue is a value.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/sha256.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::signatures {

// Raised whenever what a catalogue digest means changes (line digests, engine-part entries, kinds), so that
// digests remembered by an older coldscan (parts_memo.hpp) are not taken for new ones.
inline constexpr std::string_view k_catalogue_version = "coldscan-catalogue-v3";

// The kinds of detection lines, by the file they come from.
enum class LineKind : std::uint8_t {
    hash,         // .hdb .hsb .hdu .hsu: whole-file MD5/SHA-1/SHA-256 and size
    section_hash, // .mdb .msb .mdu .msu .imp: PE section and import-table hashes
    body,         // .ndb .ndu .db .sdb: body (extended) signatures
    logical,      // .ldb .ldu: logical signatures
    icon,         // .idb
    phishing,     // .pdb .gdb .wdb
    container,    // .cdb: container metadata
    yara,         // .yar .yara loaded by libclamav
    allow_list,   // .fp .sfp .ign .ign2
};

[[nodiscard]] std::string_view to_string(LineKind kind);

struct CatalogueLine {
    // Of the kind (one byte, with a bit for a line read from a signed container, another for an unsigned
    // one: libclamav names detections by where their line was read, "NAME.UNOFFICIAL" for a plain file, so
    // the same text there is another line) and the line, without its line end.
    Sha256Digest digest;
    LineKind kind = LineKind::hash;
    auto operator<=>(const CatalogueLine&) const = default;
};

// The sum, mod 2^256, of line digests (each covers its kind): order does not matter.
struct LineSum {
    std::array<std::uint64_t, 4> words{};
    void add(const CatalogueLine& line);
    [[nodiscard]] std::string hex() const;
};

struct SignatureCatalogue {
    // sha256 (hex) over engine_files, sorted
    std::string engine_part;
    std::string detection_set; // CatalogueDigest::detection_set of the same files
    LineSum sum;               // of every line read, repeats included (detection_set's)
    // "NAME SHA256" of every engine-part file (its name as in the folder, or inside a container)
    std::vector<std::string> engine_files;
    std::vector<CatalogueLine> lines; // sorted, unique
};

// Where a database's lines and engine-part files go as they are read.
class CatalogueSink {
public:
    virtual ~CatalogueSink() = default;
    virtual void on_line(const CatalogueLine& line) = 0;
    // The same line with its text (ClamAV's lines; a YARA rule file comes through on_line only). official:
    // read from a signed container (.cvd, .cld), whose detections libclamav names as written.
    virtual void on_line_text(const CatalogueLine& line, std::string_view /*text*/, bool /*official*/) {
        on_line(line);
    }
    // "NAME SHA256" of an engine-part file
    virtual void on_engine_file(std::string entry) = 0;
};

// The digests of a set's two parts, summed up as the files are read: nothing is kept per line. The
// detection digest is a multiset hash (LineSum over every line), so the order of files, members and lines
// does not matter: a .cld that freshclam rebuilt from a .cvd and its .cdiff files has the digest of the
// .cvd it equals.
struct CatalogueDigest {
    std::string engine_part;   // hex, as SignatureCatalogue::engine_part
    std::string detection_set; // hex
    std::uint64_t lines = 0;
};

// The catalogue of these database files (ClamavDatabaseInfo::files). Errors: io (a file cannot be read),
// invalid_argument (a container that is not one: no ClamAV-VDB header, a broken gzip stream or tar, more
// than k_max_unpacked bytes unpacked).
[[nodiscard]] Expected<SignatureCatalogue> read_catalogue(const std::vector<std::filesystem::path>& files);
// The same files into their digests only. Errors: as read_catalogue.
[[nodiscard]] Expected<CatalogueDigest> digest_catalogue(const std::vector<std::filesystem::path>& files);
// One database file's bytes under its name, into the sink (what both do per file; for tests and fuzzing).
[[nodiscard]] Expected<void> add_database(std::string_view name, std::span<const std::byte> bytes,
                                          CatalogueSink& sink);
[[nodiscard]] Expected<void> add_database(std::string_view name, std::span<const std::byte> bytes,
                                          SignatureCatalogue& catalogue);
// Sorts the lines, drops repeats and computes engine_part and detection_set from what add_database gathered.
void finish_catalogue(SignatureCatalogue& catalogue);

// The text of each wanted line (sorted) found in these files, in the order of `wanted`; a line not found is
// missing from the result. Errors: as read_catalogue.
struct LineText {
    CatalogueLine line;
    std::string text;
    bool official = false; // read from a signed container: see detection_name
};
[[nodiscard]] Expected<std::vector<LineText>> find_line_texts(const std::vector<std::filesystem::path>& files,
                                                              std::span<const CatalogueLine> wanted);
// The text of every line of this kind in these files (repeats once), in one read. Errors: as read_catalogue.
[[nodiscard]] Expected<std::vector<LineText>>
find_texts_of_kind(const std::vector<std::filesystem::path>& files, LineKind kind);
// What a hash line (.hdb .hsb .hdu .hsu: HASH:SIZE:NAME...) matches: the size of the object, nullopt for
// any size ("*") or a line that does not parse.
[[nodiscard]] std::optional<std::uint64_t> hash_line_size(std::string_view text);
// The name libclamav reports for a detection by a line: as written when the line came from a signed
// container, else with ".UNOFFICIAL" appended (plain files, and .cud containers in libclamav 1.4).
[[nodiscard]] std::string detection_name(std::string_view name, bool official);
// The signature name a hash line (HASH:SIZE:NAME...) gives, nullopt for a line that does not parse.
[[nodiscard]] std::optional<std::string_view> hash_line_name(std::string_view text);
// The digest a hash line names (MD5, SHA-1 or SHA-256 by its length), nullopt for a line that does not parse.
[[nodiscard]] std::optional<std::vector<std::byte>> hash_line_digest(std::string_view text);
// The target type a body line (.ndb: NAME:TARGET:OFFSET:HEX) or logical line (.ldb:
// NAME;...,Target:N,...;...) names; nullopt for a line that names none (.db: NAME=HEX) or does not parse: it
// may match in any layer.
[[nodiscard]] std::optional<int> pattern_line_target(LineKind kind, std::string_view text);
// Whether a line of this target type can match inside a file whose scanned layers had these libclamav types
// (sorted, as the file-inspection callback names them). Only the targets whose matcher libclamav runs on
// layers of their own types alone can say no: PE, OLE2, graphics, ELF, Mach-O, PDF, Flash, Java. Any other
// (generic, HTML and ASCII text, which also run on normalised text inside other layers, mail, ...) says yes.
[[nodiscard]] bool target_may_match(int target, std::span<const std::string> layer_types);
// Whether libclamav, scanning layers of these types (sorted), also matches buffers it derives from them that
// the file-inspection callback never sees (normalised HTML and the scripts in it, NSIS and VBA extractions,
// scripts bytecode normalises in PDF): hash lines may match there, whatever the recorded layers' sizes.
[[nodiscard]] bool derives_unseen_buffers(std::span<const std::string> layer_types);

// Lines of `to` not in `from` (added) and of `from` not in `to` (removed), each sorted.
struct CatalogueDelta {
    std::vector<CatalogueLine> added;
    std::vector<CatalogueLine> removed;
};
[[nodiscard]] CatalogueDelta difference(const SignatureCatalogue& from, const SignatureCatalogue& to);

// The most bytes one container may unpack to (today's daily.cld is ~300 MB).
inline constexpr std::uint64_t k_max_unpacked = 2ULL << 30;

} // namespace coldscan::signatures
