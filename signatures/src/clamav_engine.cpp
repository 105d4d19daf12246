// Loading a libclamav engine: databases, explicit limits, compile.
//
// Every limit is set explicitly (never libclamav's defaults) and checked, because the limits are part of the
// verdict: a file past a limit is reported as limit_exceeded, and the limits go into the signature-set
// fingerprint that keys the verdict cache.
#include "clamav_engine_impl.hpp"
#include "clamav_log.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"
#include "file_fingerprint.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <string_view>

namespace coldscan::signatures {
namespace {

// The database extensions cl_load accepts in a folder: libclamav's CLI_DBEXT (readdb.h, built with YARA).
// It matches by suffix, so ".db" also covers ".hdb", ".ndb", ...; listed in full for the reader.
constexpr std::array<std::string_view, 38> k_database_extensions = {
    ".db",  ".hdb", ".hdu", ".fp",  ".mdb", ".mdu", ".hsb", ".hsu",  ".sfp",  ".msb", ".msu",  ".ndb", ".ndu",
    ".ldb", ".ldu", ".sdb", ".zmd", ".rmd", ".pdb", ".gdb", ".wdb",  ".cbc",  ".ftm", ".cfg",  ".cvd", ".cld",
    ".cud", ".cdb", ".cat", ".crb", ".idb", ".ioc", ".yar", ".yara", ".pwdb", ".ign", ".ign2", ".imp",
};

bool is_database_name(const std::filesystem::path& file) {
    const std::string name = detail::ascii_lower(file.filename().string());
    return std::ranges::any_of(k_database_extensions,
                               [&](std::string_view ext) { return name.ends_with(ext); });
}

// Database files directly in folder (cl_load does not recurse), sorted. A name cl_load would take that is
// not a regular file (a dangling link, a folder, a FIFO) is an error: libclamav skips some of those without
// a word (the set would silently lack their signatures) and blocks or fails on others.
Expected<std::vector<std::filesystem::path>> database_files(const std::filesystem::path& folder) {
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        if (!is_database_name(it->path())) {
            continue;
        }
        std::error_code type_ec;
        if (!it->is_regular_file(type_ec)) {
            return make_error(Errc::invalid_argument,
                              "ClamAV database " + it->path().string() +
                                  " is not a regular file (a dangling link, a folder or a special file)");
        }
        files.push_back(it->path());
    }
    if (ec) {
        return make_error(Errc::io,
                          "cannot list the ClamAV database folder " + folder.string() + ": " + ec.message());
    }
    std::ranges::sort(files);
    return files;
}

long long clamp_to_long_long(std::uint64_t value) {
    return static_cast<long long>(std::min<std::uint64_t>(value, static_cast<std::uint64_t>(LLONG_MAX)));
}

Expected<void> set_limits(cl_engine* engine, const ScanLimits& limits) {
    struct Setting {
        cl_engine_field field;
        const char* name;
        long long value;
    };
    const auto scan_time_ms = std::clamp<std::int64_t>(limits.max_scan_time.count(), 0, UINT32_MAX);
    const std::array<Setting, 5> settings = {{
        {CL_ENGINE_MAX_FILESIZE, "MaxFileSize", clamp_to_long_long(limits.max_file_size)},
        {CL_ENGINE_MAX_SCANSIZE, "MaxScanSize", clamp_to_long_long(limits.max_scan_size)},
        {CL_ENGINE_MAX_RECURSION, "MaxRecursion", limits.max_recursion},
        {CL_ENGINE_MAX_FILES, "MaxFiles", limits.max_files},
        {CL_ENGINE_MAX_SCANTIME, "MaxScanTime", scan_time_ms},
    }};
    for (const auto& setting : settings) {
        if (const cl_error_t rc = cl_engine_set_num(engine, setting.field, setting.value); rc != CL_SUCCESS) {
            return make_error(Errc::engine, std::string("cannot set the ClamAV limit ") + setting.name +
                                                " to " + std::to_string(setting.value) + ": " +
                                                cl_strerror(rc));
        }
    }
    return {};
}

Error load_error(std::string_view what, const std::filesystem::path& path, cl_error_t rc,
                 const detail::ClamavLogScope& scope) {
    std::string message = std::string(what) + " " + path.string() + ": " + cl_strerror(rc);
    if (const std::string details = scope.joined_errors(); !details.empty()) {
        message += " (" + details + ")";
    }
    return Error{Errc::engine, std::move(message)};
}

} // namespace

Expected<ClamavDatabaseInfo> ClamavEngine::describe(const std::filesystem::path& path) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) {
        return make_error(Errc::not_found, "ClamAV database path " + path.string() + " does not exist");
    }
    ClamavDatabaseInfo info;
    info.path = path;
    if (std::filesystem::is_directory(status)) {
        auto files = database_files(path);
        if (!files) {
            return std::unexpected(files.error());
        }
        info.files = std::move(*files);
        if (info.files.empty()) {
            return make_error(Errc::not_found,
                              "no ClamAV database files (.cvd, .cld, .hdb, .hsb, .ndb, .ldb, ...) in " +
                                  path.string());
        }
    } else {
        info.files.push_back(path);
    }
    auto fingerprint = detail::fingerprint_files(info.files);
    if (!fingerprint) {
        return std::unexpected(fingerprint.error());
    }
    info.fingerprint = std::move(*fingerprint);
    info.engine_version = cl_retver();
    return info;
}

Expected<ClamavEngine> ClamavEngine::load(const std::filesystem::path& path, const ScanLimits& limits) {
    auto info = describe(path);
    if (!info) {
        return std::unexpected(info.error());
    }
    return compile(std::move(*info), limits);
}

Expected<ClamavEngine> ClamavEngine::compile(ClamavDatabaseInfo info, const ScanLimits& limits) {
    const std::filesystem::path path = info.path;
    ClamavEngineHandle engine(cl_engine_new());
    if (!engine) {
        return make_error(Errc::engine, "cl_engine_new failed (out of memory?)");
    }
    if (auto limits_set = set_limits(engine.get(), limits); !limits_set) {
        return std::unexpected(limits_set.error());
    }
    cl_engine_set_clcb_virus_found(engine.get(), &detail::on_clamav_virus_found);
    cl_engine_set_clcb_meta(engine.get(), &detail::on_clamav_archive_member);
    cl_engine_set_clcb_file_inspection(engine.get(), &detail::on_clamav_layer);
    // libclamav's clean cache would remember a file whose member it cut (it does not know that is a limit
    // hit) and skip it, member and all, the next time: coldscan keeps its own cache of verdicts by content.
    if (const cl_error_t rc = cl_engine_set_num(engine.get(), CL_ENGINE_DISABLE_CACHE, 1); rc != CL_SUCCESS) {
        return make_error(Errc::engine,
                          std::string("cannot turn off ClamAV's clean cache: ") + cl_strerror(rc));
    }
    auto scratch = TempDir::create("coldscan-clamav");
    if (!scratch) {
        return std::unexpected(scratch.error());
    }
    if (const cl_error_t rc = cl_engine_set_str(engine.get(), CL_ENGINE_TMPDIR, scratch->path().c_str());
        rc != CL_SUCCESS) {
        return make_error(Errc::engine,
                          std::string("cannot set the ClamAV scratch folder: ") + cl_strerror(rc));
    }

    const std::string subject = path.string();
    const detail::ClamavLogScope scope(detail::ClamavLogScope::Kind::load, subject);
    unsigned int signatures = 0;
    if (const cl_error_t rc = cl_load(path.c_str(), engine.get(), &signatures, CL_DB_STDOPT);
        rc != CL_SUCCESS) {
        return std::unexpected(load_error("cannot load ClamAV databases from", path, rc, scope));
    }
    if (const cl_error_t rc = cl_engine_compile(engine.get()); rc != CL_SUCCESS) {
        return std::unexpected(load_error("cannot compile the ClamAV engine for", path, rc, scope));
    }

    for (const auto& error : scope.errors()) {
        spdlog::warn("libclamav: {}: {}", printable(subject), printable(error));
    }

    auto impl = std::make_unique<Impl>(Impl{std::move(*scratch), std::move(engine), {}});
    impl->info = std::move(info);
    impl->info.signature_count = signatures;
    spdlog::info("ClamAV {}: {} signatures from {} database file(s) in {}", impl->info.engine_version,
                 signatures, impl->info.files.size(), path.string());
    return ClamavEngine(std::move(impl));
}

ClamavEngine::ClamavEngine(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
ClamavEngine::ClamavEngine(ClamavEngine&&) noexcept = default;
ClamavEngine& ClamavEngine::operator=(ClamavEngine&&) noexcept = default;
ClamavEngine::~ClamavEngine() = default;

const ClamavDatabaseInfo& ClamavEngine::info() const noexcept {
    return m_impl->info;
}

bool holds_clamav_databases(const std::filesystem::path& folder) {
    std::error_code ec;
    if (!std::filesystem::is_directory(folder, ec)) {
        return false;
    }
    const auto files = database_files(folder);
    return !files || !files->empty(); // a folder with a broken database entry is one: loading it tells why
}

} // namespace coldscan::signatures
