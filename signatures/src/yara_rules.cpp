// Compiling YARA rules: sources (each file in its own namespace) or one compiled file.
//
// Sources go through yr_compiler_add_fd with their real path as the file name, so `include "x.yar"` resolves
// next to the including file and every message says file:line. The compiler cannot be used after a file with
// errors, so compilation stops at the first bad file and reports all of that file's errors.
#include "coldscan/common/log.hpp"
#include "coldscan/common/unique_fd.hpp"
#include "file_fingerprint.hpp"
#include "yara_rules_impl.hpp"

#include <algorithm>
#include <array>
#include <fcntl.h>

namespace coldscan::signatures {
namespace {

using CompilerHandle = CHandle<YR_COMPILER, yr_compiler_destroy>;

constexpr std::string_view k_compiled_magic = "YARA"; // the first bytes of yarac output

struct CompilerMessages {
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
    bool lost = false; // a message could not be stored (out of memory)
};

void on_compiler_message(int level, const char* file_name, int line_number, const YR_RULE* /*rule*/,
                         const char* message, void* user_data) noexcept {
    auto* messages = static_cast<CompilerMessages*>(user_data);
    try {
        std::string text = file_name != nullptr ? file_name : "<rules>";
        text += ":" + std::to_string(line_number) + ": " + (message != nullptr ? message : "?");
        auto& list = level == YARA_ERROR_LEVEL_ERROR ? messages->errors : messages->warnings;
        list.push_back(std::move(text));
    } catch (...) {
        messages->lost = true;
    }
}

bool has_rules_extension(const std::filesystem::path& file) {
    const std::string ext = detail::ascii_lower(file.extension().string());
    return ext == ".yar" || ext == ".yara" || ext == ".yarc";
}

// The rule files named by paths: files as given, folders searched recursively; sorted, no repeats.
Expected<std::vector<std::filesystem::path>> rule_files(const std::vector<std::filesystem::path>& paths) {
    std::vector<std::filesystem::path> files;
    for (const auto& path : paths) {
        std::error_code ec;
        const auto status = std::filesystem::status(path, ec);
        if (ec || !std::filesystem::exists(status)) {
            return make_error(Errc::not_found, "YARA rules path " + path.string() + " does not exist");
        }
        if (!std::filesystem::is_directory(status)) {
            files.push_back(path);
            continue;
        }
        const auto options = std::filesystem::directory_options::skip_permission_denied;
        std::filesystem::recursive_directory_iterator it(path, options, ec);
        for (const std::filesystem::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
            std::error_code type_ec;
            if (it->is_regular_file(type_ec) && has_rules_extension(it->path())) {
                files.push_back(it->path());
            }
        }
        if (ec) {
            return make_error(Errc::io, "cannot list " + path.string() + ": " + ec.message());
        }
    }
    std::ranges::sort(files);
    const auto repeats = std::ranges::unique(files);
    files.erase(repeats.begin(), repeats.end());
    return files;
}

Expected<bool> is_compiled(const std::filesystem::path& file) {
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return make_error(Errc::io, errno_message("cannot open " + file.string()));
    }
    std::array<char, k_compiled_magic.size()> head{};
    const ssize_t n = ::pread(fd.get(), head.data(), head.size(), 0);
    if (n < 0) {
        return make_error(Errc::io, errno_message("cannot read " + file.string()));
    }
    return std::string_view(head.data(), static_cast<std::size_t>(n)) == k_compiled_magic;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& line : lines) {
        out += out.empty() ? " " : "; ";
        out += line;
    }
    return out;
}

Expected<YaraRulesHandle> load_compiled(const std::filesystem::path& file) {
    YR_RULES* rules = nullptr;
    const int rc = yr_rules_load(file.c_str(), &rules);
    YaraRulesHandle handle(rules);
    if (rc == ERROR_SUCCESS) {
        return handle;
    }
    const std::string message =
        "cannot load compiled YARA rules " + file.string() + ": error code " + std::to_string(rc);
    if (rc == ERROR_INVALID_FILE || rc == ERROR_CORRUPT_FILE || rc == ERROR_UNSUPPORTED_FILE_VERSION) {
        return make_error(Errc::invalid_argument, message + " (corrupt, or made by another yarac version)");
    }
    return make_error(Errc::engine, message);
}

Expected<YaraRulesHandle> compile_sources(const std::vector<std::filesystem::path>& files) {
    YR_COMPILER* raw = nullptr;
    if (const int rc = yr_compiler_create(&raw); rc != ERROR_SUCCESS) {
        return make_error(Errc::engine, "cannot create a YARA compiler: error code " + std::to_string(rc));
    }
    const CompilerHandle compiler(raw);
    CompilerMessages messages;
    yr_compiler_set_callback(compiler.get(), &on_compiler_message, &messages);
    for (const char* name : detail::k_yara_externals) {
        if (const int rc = yr_compiler_define_string_variable(compiler.get(), name, "");
            rc != ERROR_SUCCESS) {
            return make_error(Errc::engine, std::string("cannot define the YARA external ") + name +
                                                ": error code " + std::to_string(rc));
        }
    }
    bool failed = false;
    for (const auto& file : files) {
        UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) {
            return make_error(Errc::io, errno_message("cannot open " + file.string()));
        }
        const std::string name_space = file.stem().string();
        if (yr_compiler_add_fd(compiler.get(), fd.get(), name_space.c_str(), file.c_str()) != 0) {
            failed = true;
            break; // the compiler is unusable after errors; they are in messages
        }
    }
    for (const auto& warning : messages.warnings) {
        spdlog::warn("YARA: {}", warning);
    }
    if (failed || !messages.errors.empty() || messages.lost) {
        return make_error(Errc::invalid_argument, "YARA rules do not compile:" + joined(messages.errors));
    }
    YR_RULES* rules = nullptr;
    if (const int rc = yr_compiler_get_rules(compiler.get(), &rules); rc != ERROR_SUCCESS) {
        return make_error(Errc::engine, "cannot build the YARA rules: error code " + std::to_string(rc));
    }
    return YaraRulesHandle(rules);
}

} // namespace

Expected<YaraRules> YaraRules::compile(const std::vector<std::filesystem::path>& paths) {
    auto files = rule_files(paths);
    if (!files) {
        return std::unexpected(files.error());
    }
    if (files->empty()) {
        std::string named;
        for (const auto& path : paths) {
            named += " " + path.string();
        }
        return make_error(Errc::not_found, "no YARA rule files (.yar, .yara, .yarc) in" + named);
    }

    std::optional<std::filesystem::path> compiled;
    for (const auto& file : *files) {
        auto magic = is_compiled(file);
        if (!magic) {
            return std::unexpected(magic.error());
        }
        if (*magic) {
            compiled = file;
            break;
        }
    }
    if (compiled && files->size() != 1) {
        return make_error(Errc::invalid_argument, "compiled YARA rules (" + compiled->string() +
                                                      ") must be the only rules input; " +
                                                      std::to_string(files->size()) + " files were given");
    }

    auto rules = compiled ? load_compiled(*compiled) : compile_sources(*files);
    if (!rules) {
        return std::unexpected(rules.error());
    }
    auto fingerprint = detail::fingerprint_files(*files);
    if (!fingerprint) {
        return std::unexpected(fingerprint.error());
    }

    auto impl = std::make_shared<Impl>();
    impl->info.rule_count = (*rules)->num_rules;
    impl->rules = std::move(*rules);
    impl->info.files = std::move(*files);
    impl->info.fingerprint = std::move(*fingerprint);
    impl->info.engine_version = YR_VERSION;
    spdlog::info("YARA {}: {} rules from {} file(s)", impl->info.engine_version, impl->info.rule_count,
                 impl->info.files.size());
    return YaraRules(std::move(impl));
}

const YaraRulesInfo& YaraRules::info() const noexcept {
    return m_impl->info;
}

} // namespace coldscan::signatures
