#include "filesystem_wire.hpp"

#include "coldscan/common/json_number.hpp"
#include "coldscan/common/sha256.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

namespace coldscan::disk::detail {
namespace {

using json = nlohmann::json;

constexpr std::size_t k_max_table_warnings = 64;
constexpr std::size_t k_max_disks = 64; // of one VM
constexpr std::size_t k_max_table_warning_length = 512;

// text cut to at most length bytes, on a UTF-8 character boundary.
std::string cut_to(std::string text, std::size_t length) {
    if (text.size() > length) {
        while (length > 0 && (static_cast<unsigned char>(text[length]) & 0xC0U) == 0x80U) {
            --length;
        }
        text.resize(length);
    }
    return text;
}

json error_json(const Error& error) {
    return {{"code", static_cast<int>(error.code)}, {"message", error.message}};
}

Error error_of(const json& in) {
    const int code = json_integer<int>(in.at("code"));
    const bool known = code >= 0 && code <= static_cast<int>(Errc::internal);
    return Error{known ? static_cast<Errc>(code) : Errc::io, in.at("message").get<std::string>()};
}

std::vector<std::byte> bytes_of_hex(const std::string& hex) {
    auto digit = [](char c) -> unsigned {
        if (c >= '0' && c <= '9') {
            return static_cast<unsigned>(c - '0');
        }
        if (c >= 'a' && c <= 'f') {
            return static_cast<unsigned>(c - 'a' + 10);
        }
        throw json::type_error::create(302, "bad hex", nullptr);
    };
    if (hex.size() % 2 != 0) {
        throw json::type_error::create(302, "odd hex", nullptr);
    }
    std::vector<std::byte> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<std::byte>((digit(hex[2 * i]) << 4U) | digit(hex[2 * i + 1]));
    }
    return out;
}

// Paths are guest bytes, not always UTF-8: they travel as hex.
json file_json(const FsFile& f) {
    json runs = json::array();
    for (const auto& r : f.runs) {
        runs.push_back({r.file_offset, r.fs_offset, r.length, r.sparse});
    }
    json out = {{"path", to_hex(std::as_bytes(std::span(f.path)))},
                {"size", f.size},
                {"inode", f.inode},
                {"stamp", {f.stamp.inode, f.stamp.generation, f.stamp.mtime_ns, f.stamp.ctime_ns}},
                {"mtime", f.mtime},
                {"links", f.links},
                {"runs", std::move(runs)},
                {"initialized", f.initialized},
                {"resident", to_hex(f.resident)},
                {"through_tsk", f.through_tsk},
                {"attr", {f.attr_type, f.attr_id}}};
    if (f.problem) {
        out["problem"] = error_json(*f.problem);
    }
    return out;
}

FsFile file_of(const json& in) {
    FsFile f;
    const auto path = bytes_of_hex(in.at("path").get<std::string>());
    f.path.assign(reinterpret_cast<const char*>(path.data()), path.size());
    f.size = json_integer<std::uint64_t>(in.at("size"));
    f.inode = json_integer<std::uint64_t>(in.at("inode"));
    const auto& stamp = in.at("stamp");
    f.stamp = FileStamp{json_integer<std::uint64_t>(stamp.at(0)), json_integer<std::uint64_t>(stamp.at(1)),
                        json_integer<std::int64_t>(stamp.at(2)), json_integer<std::int64_t>(stamp.at(3))};
    f.mtime = json_integer<std::int64_t>(in.at("mtime"));
    f.links = json_integer<std::uint32_t>(in.at("links"));
    for (const auto& r : in.at("runs")) {
        f.runs.push_back(DataRun{json_integer<std::uint64_t>(r.at(0)), json_integer<std::uint64_t>(r.at(1)),
                                 json_integer<std::uint64_t>(r.at(2)), r.at(3).get<bool>()});
    }
    f.initialized = json_integer<std::uint64_t>(in.at("initialized"));
    f.resident = bytes_of_hex(in.at("resident").get<std::string>());
    f.through_tsk = in.at("through_tsk").get<bool>();
    f.attr_type = json_integer<std::uint32_t>(in.at("attr").at(0));
    f.attr_id = json_integer<std::uint16_t>(in.at("attr").at(1));
    if (in.contains("problem")) {
        f.problem = error_of(in.at("problem"));
    }
    return f;
}

json volume_json(const LogicalVolume& v) {
    json segments = json::array();
    for (const auto& s : v.segments) {
        json places = json::array();
        for (const auto& p : s.places) {
            places.push_back({p.disk, p.offset});
        }
        segments.push_back({s.lv_offset, s.length, s.stripe_bytes, std::move(places)});
    }
    return {{"group", v.group},
            {"name", v.name},
            {"size", v.size},
            {"segments", std::move(segments)},
            {"unsupported", v.unsupported},
            {"container", v.container}};
}

LogicalVolume volume_of(const json& in) {
    LogicalVolume v;
    v.group = in.at("group").get<std::string>();
    v.name = in.at("name").get<std::string>();
    v.size = json_integer<std::uint64_t>(in.at("size"));
    for (const auto& s : in.at("segments")) {
        VolumeSegment segment{json_integer<std::uint64_t>(s.at(0)),
                              json_integer<std::uint64_t>(s.at(1)),
                              json_integer<std::uint64_t>(s.at(2)),
                              {}};
        for (const auto& p : s.at(3)) {
            segment.places.push_back(
                VolumePlace{json_integer<unsigned>(p.at(0)), json_integer<std::uint64_t>(p.at(1))});
        }
        v.segments.push_back(std::move(segment));
    }
    v.unsupported = cut_to(in.at("unsupported").get<std::string>(), k_max_table_warning_length);
    v.container = in.at("container").get<bool>();
    return v;
}

template <typename T, typename F> Expected<T> decode(std::string_view text, std::string_view what, F&& read) {
    json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
        return make_error(Errc::corrupt, "the filesystem worker sent an unreadable " + std::string(what));
    }
    try {
        return read(parsed);
    } catch (const json::exception& e) {
        return make_error(Errc::corrupt,
                          "the filesystem worker sent a malformed " + std::string(what) + ": " + e.what());
    }
}

} // namespace

std::string start_to_wire(const WorkerStart& start) {
    json disks = json::array();
    for (const auto& d : start.disks) {
        disks.push_back({d.nbd_socket, d.nbd_uri, d.raw_file});
    }
    return json{{"disks", std::move(disks)},
                {"disk", start.disk},
                {"offset", start.offset},
                {"size", start.size},
                {"address_space_bytes", start.limits.address_space_bytes},
                {"cpu_seconds", start.limits.cpu_time.count()},
                {"report_bytes", start.limits.report_bytes},
                {"partition_table", start.partition_table},
                {"volume", start.volume ? volume_json(*start.volume) : json()}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
}

Expected<WorkerStart> start_from_wire(std::string_view text) {
    return decode<WorkerStart>(text, "start", [](const json& in) {
        WorkerStart start;
        for (const auto& d : in.at("disks")) {
            start.disks.push_back(WorkerDisk{d.at(0).get<std::string>(), d.at(1).get<std::string>(),
                                             d.at(2).get<std::string>()});
        }
        start.disk = json_integer<unsigned>(in.at("disk"));
        if (start.disks.empty() || start.disks.size() > k_max_disks || start.disk >= start.disks.size()) {
            throw json::type_error::create(302, "no such disk", nullptr);
        }
        start.offset = json_integer<std::uint64_t>(in.at("offset"));
        start.size = json_integer<std::uint64_t>(in.at("size"));
        start.limits.address_space_bytes = json_integer<std::uint64_t>(in.at("address_space_bytes"));
        start.limits.cpu_time = std::chrono::seconds(json_integer<std::int64_t>(in.at("cpu_seconds")));
        start.limits.report_bytes = json_integer<std::uint64_t>(in.at("report_bytes"));
        start.partition_table = in.at("partition_table").get<bool>();
        if (!in.at("volume").is_null()) {
            start.volume = volume_of(in.at("volume"));
        }
        return start;
    });
}

std::string batch_to_wire(const FileBatch& batch) {
    json files = json::array();
    for (const auto& f : batch.files) {
        files.push_back(file_json(f));
    }
    json out = {{"files", std::move(files)}, {"end", batch.end}, {"bytes_read", batch.bytes_read}};
    if (batch.error) {
        out["error"] = error_json(*batch.error);
    }
    return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

Expected<FileBatch> batch_from_wire(std::string_view text) {
    return decode<FileBatch>(text, "file list", [](const json& in) {
        FileBatch batch;
        for (const auto& f : in.at("files")) {
            batch.files.push_back(file_of(f));
        }
        batch.end = in.at("end").get<bool>();
        batch.bytes_read = json_integer<std::uint64_t>(in.at("bytes_read"));
        if (in.contains("error")) {
            batch.error = error_of(in.at("error"));
        }
        return batch;
    });
}

std::string table_to_wire(const PartitionTable& table) {
    json partitions = json::array();
    for (const auto& p : table.partitions) {
        partitions.push_back({p.number, p.offset, p.size, p.type, p.extended});
    }
    return json{{"kind", to_string(table.kind)},
                {"sector_size", table.sector_size},
                {"partitions", std::move(partitions)},
                {"warnings", table.warnings}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
}

Expected<PartitionTable> table_from_wire(std::string_view text, std::uint64_t disk_size) {
    auto table = decode<PartitionTable>(text, "partition table", [](const json& in) {
        PartitionTable t;
        const auto kind = in.at("kind").get<std::string>();
        if (kind != "none" && kind != "mbr" && kind != "gpt") {
            throw json::type_error::create(302, "unknown table kind", nullptr);
        }
        t.kind = kind == "mbr" ? TableKind::mbr : kind == "gpt" ? TableKind::gpt : TableKind::none;
        t.sector_size = json_integer<unsigned>(in.at("sector_size"));
        for (const auto& p : in.at("partitions")) {
            t.partitions.push_back(Partition{
                json_integer<unsigned>(p.at(0)), json_integer<std::uint64_t>(p.at(1)),
                json_integer<std::uint64_t>(p.at(2)), p.at(3).get<std::string>(), p.at(4).get<bool>()});
        }
        for (const auto& w : in.at("warnings")) {
            if (t.warnings.size() < k_max_table_warnings) { // our own sentences; a flood is not
                t.warnings.push_back(cut_to(w.get<std::string>(), k_max_table_warning_length));
            }
        }
        return t;
    });
    if (!table) {
        return table;
    }
    // What read_partition_table promises, checked again: the worker may be compromised.
    auto bad = [](const std::string& why) {
        return make_error(Errc::corrupt, "the partition table worker described " + why);
    };
    if (table->sector_size != 512 && table->sector_size != 4096) {
        return bad("a sector size of " + std::to_string(table->sector_size));
    }
    if (table->kind == TableKind::none && !table->partitions.empty()) {
        return bad("partitions without a table");
    }
    unsigned previous = 0;
    for (const auto& p : table->partitions) {
        if (p.size == 0 || p.offset >= disk_size || p.size > disk_size - p.offset) {
            return bad("partition " + std::to_string(p.number) + " outside the disk");
        }
        if (p.number <= previous || p.type.size() > 64 || (table->kind == TableKind::gpt && p.extended)) {
            return bad("partition " + std::to_string(p.number) + " inconsistently");
        }
        previous = p.number;
    }
    return table;
}

std::string volumes_to_wire(const VolumeLayout& layout) {
    json pvs = json::array();
    for (const auto& pv : layout.pvs) {
        pvs.push_back({pv.disk, pv.offset, pv.group});
    }
    json volumes = json::array();
    for (const auto& v : layout.volumes) {
        volumes.push_back(volume_json(v));
    }
    return json{{"pvs", std::move(pvs)}, {"volumes", std::move(volumes)}, {"warnings", layout.warnings}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
}

Expected<VolumeLayout> volumes_from_wire(std::string_view text,
                                         const std::vector<std::uint64_t>& disk_sizes) {
    constexpr std::size_t k_max_volumes = 4096;
    auto layout = decode<VolumeLayout>(text, "volume list", [&](const json& in) {
        VolumeLayout l;
        for (const auto& pv : in.at("pvs")) {
            l.pvs.push_back(FoundPv{json_integer<unsigned>(pv.at(0)), json_integer<std::uint64_t>(pv.at(1)),
                                    pv.at(2).get<std::string>()});
        }
        for (const auto& v : in.at("volumes")) {
            l.volumes.push_back(volume_of(v));
        }
        for (const auto& w : in.at("warnings")) {
            if (l.warnings.size() < k_max_table_warnings) {
                l.warnings.push_back(cut_to(w.get<std::string>(), k_max_table_warning_length));
            }
        }
        return l;
    });
    if (!layout) {
        return layout;
    }
    // What find_logical_volumes promises, checked again: the worker may be compromised.
    auto bad = [](const std::string& why) {
        return make_error(Errc::corrupt, "the partition table worker described " + why);
    };
    if (layout->volumes.size() > k_max_volumes || layout->pvs.size() > k_max_volumes) {
        return bad("too many logical volumes");
    }
    for (const auto& pv : layout->pvs) {
        if (pv.disk >= disk_sizes.size() || pv.offset >= disk_sizes[pv.disk] ||
            (!pv.group.empty() && !valid_lvm_name(pv.group))) {
            return bad("a physical volume that cannot be");
        }
    }
    for (const auto& v : layout->volumes) {
        if (!valid_lvm_name(v.group) || !valid_lvm_name(v.name) ||
            (v.unsupported.empty() == v.segments.empty())) {
            return bad("a logical volume that cannot be");
        }
        if (auto fits = volume_fits(v, disk_sizes); !fits) {
            return bad(fits.error().message);
        }
    }
    return layout;
}

std::string error_to_wire(const Error& error) {
    return json{{"error", error_json(error)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {
constexpr std::string_view k_progress_prefix = "progress ";
}

std::string progress_to_wire(std::uint64_t bytes_read) {
    return std::string(k_progress_prefix) + std::to_string(bytes_read);
}

std::optional<std::uint64_t> progress_from_wire(std::string_view text) {
    if (!text.starts_with(k_progress_prefix)) {
        return std::nullopt;
    }
    const std::string_view digits = text.substr(k_progress_prefix.size());
    std::uint64_t bytes = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bytes);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
        return std::nullopt;
    }
    return bytes;
}

std::optional<Error> error_from_wire(std::string_view text) {
    json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("error")) {
        return std::nullopt;
    }
    try {
        return error_of(parsed.at("error"));
    } catch (const json::exception&) {
        return Error{Errc::corrupt, "the filesystem worker sent a malformed error"};
    }
}

} // namespace coldscan::disk::detail
