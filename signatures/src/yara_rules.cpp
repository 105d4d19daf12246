// Compiling YARA rules: sources (each file in its own namespace) or one compiled file.
//
// Sources go through yr_compiler_add_fd with their real path as the file name, so every message says
// file:line. The compiler cannot be used after a file with errors, so compilation stops at the first bad file
// and reports all of that file's errors.
//
// Includes go through our own include callback, for the verdict cache: a cached verdict is reused while the
// rules fingerprint is unchanged, so the fingerprint has to cover every byte that was compiled, and libyara's
// default callback reads included files without telling anyone. Ours resolves an include name next to the
// including file (absolute names as given), reads the file once per compile, keeps its text (handed to
// libyara, hashed for the fingerprint, searched for path externals) and reports a missing file, a cycle or
// too deep a chain as a compile error.
//
// The including file is the awkward part. libyara 4.2 passes the top-level file name we gave it as the caller
// of a first-level include, but for a nested include it passes the *include name* of the including file (say
// "lib/common.yar"), which says nothing about where that file is, and it names included files the same way in
// its messages. libyara keeps its include stack in the public YR_COMPILER (file_name_stack, with the file
// being read on top), so we keep a parallel stack of real paths: when a callback or message arrives at depth
// d, our entries past d belong to includes that have ended and entry d-1 is the file being read.
//
// A rule that reads filename, filepath or extension can match the same bytes at one path and not another; the
// cache must then key on the path too. We cannot ask libyara which externals a rule reads, so reads_file_path
// comes from the text: any whole-word mention, in a condition, a comment or a string, counts.
#include "coldscan/common/log.hpp"
#include "coldscan/common/read_fully.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/unique_fd.hpp"
#include "file_fingerprint.hpp"
#include "yara_rules_impl.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <span>
#include <utility>

namespace coldscan::signatures {
namespace {

using CompilerHandle = CHandle<YR_COMPILER, yr_compiler_destroy>;

constexpr std::string_view k_compiled_magic = "YARA"; // the first bytes of yarac output

// What one compilation gathers through libyara's callbacks; lives on compile_sources' stack.
struct CompileState {
    YR_COMPILER* compiler = nullptr;
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
    bool lost = false; // a message or an include failure could not be stored (out of memory)
    // The real path of the file being read at each level of libyara's include stack (0: the top-level file).
    std::vector<std::filesystem::path> open_files;
    std::map<std::filesystem::path, std::string> included; // resolved path -> the text handed to libyara
    std::string include_error; // why the last include failed; reported in place of libyara's message
};

// All of fd's bytes (pread: the file offset stays where it is). Error: io.
Expected<std::string> read_text(int fd, const std::filesystem::path& file) {
    constexpr std::size_t k_chunk = 64U << 10;
    std::string text;
    for (;;) {
        const std::size_t done = text.size();
        text.resize(done + k_chunk);
        int error = 0;
        const std::size_t n =
            read_fully(fd, done, std::as_writable_bytes(std::span(text).subspan(done)), error);
        text.resize(done + n);
        if (error != 0) {
            return make_error(Errc::io, errno_message("cannot read " + file.string(), error));
        }
        if (n < k_chunk) {
            return text;
        }
    }
}

bool is_identifier_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Whether text mentions a path external as a whole identifier anywhere. A mention in a comment or string
// gives a false "yes", which only costs cache hits; a false "no" is impossible.
bool mentions_path_external(std::string_view text) {
    for (const std::string_view name : detail::k_yara_path_externals) {
        for (auto at = text.find(name); at != std::string_view::npos; at = text.find(name, at + 1)) {
            const auto end = at + name.size();
            if ((at == 0 || !is_identifier_char(text[at - 1])) &&
                (end == text.size() || !is_identifier_char(text[end]))) {
                return true;
            }
        }
    }
    return false;
}

// The depth of libyara's include stack: 1 while a top-level file is read, 2 inside a file it includes, ...
std::size_t include_depth(const CompileState& state) {
    return static_cast<std::size_t>(std::max(state.compiler->file_name_stack_ptr, 0));
}

// The text of the file include_name names, resolved next to the file being read; it stays in state.included
// until the compilation ends. Cycles and the depth limit are caught here, before libyara's own checks (which
// compare include names, not files, and leak memory when they fail). Errors: io (cannot open or read),
// invalid_argument (a cycle, too deep), internal (no file is being read).
Expected<const char*> include_text(CompileState& state, const char* include_name) {
    const std::string what = std::string("cannot include \"") + include_name + "\": ";
    const std::size_t depth = include_depth(state);
    if (depth == 0 || depth > state.open_files.size()) {
        return make_error(Errc::internal, what + "no including file");
    }
    if (depth >= YR_MAX_INCLUDE_DEPTH) {
        return make_error(Errc::invalid_argument,
                          what + "includes nest deeper than " + std::to_string(YR_MAX_INCLUDE_DEPTH));
    }
    state.open_files.resize(depth); // the entries past depth are includes that have ended
    const std::filesystem::path name = include_name;
    const std::filesystem::path file =
        name.is_absolute() ? name : state.open_files.back().parent_path() / name;
    for (const auto& open_file : state.open_files) {
        std::error_code ec;
        if (std::filesystem::equivalent(open_file, file, ec)) {
            return make_error(Errc::invalid_argument,
                              what + "include cycle (" + file.string() + " is already being read)");
        }
    }
    auto it = state.included.find(file);
    if (it == state.included.end()) {
        UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) {
            return make_error(Errc::io, errno_message(what + "cannot open " + file.string()));
        }
        auto text = read_text(fd.get(), file);
        if (!text) {
            return make_error(Errc::io, what + text.error().message);
        }
        it = state.included.emplace(file, std::move(*text)).first;
    }
    state.open_files.push_back(file); // libyara pushes the include next
    return it->second.c_str();
}

// The include callback. No free callback: the text stays owned by state.included.
const char* on_include(const char* include_name, const char* /*calling_rule_filename*/,
                       const char* /*calling_rule_namespace*/, void* user_data) noexcept {
    auto* state = static_cast<CompileState*>(user_data);
    try {
        auto text = include_text(*state, include_name != nullptr ? include_name : "");
        if (!text) {
            state->include_error = std::move(text.error().message);
            return nullptr;
        }
        return *text;
    } catch (...) {
        state->lost = true;
        return nullptr;
    }
}

// The real path of the file a message is about (libyara names an included file by its include name).
std::string message_file(const CompileState& state, const char* file_name) {
    if (file_name == nullptr) {
        return "<rules>";
    }
    const std::size_t depth = include_depth(state);
    if (depth >= 1 && depth <= state.open_files.size() &&
        std::strcmp(file_name, state.compiler->file_name_stack[depth - 1]) == 0) {
        return state.open_files[depth - 1].string();
    }
    return file_name;
}

void on_compiler_message(int level, const char* file_name, int line_number, const YR_RULE* /*rule*/,
                         const char* message, void* user_data) noexcept {
    auto* state = static_cast<CompileState*>(user_data);
    try {
        std::string text = message_file(*state, file_name) + ":" + std::to_string(line_number) + ": ";
        if (level == YARA_ERROR_LEVEL_ERROR && !state->include_error.empty()) {
            text += std::exchange(state->include_error, {}); // libyara's says only "callback failed"
        } else {
            text += message != nullptr ? message : "?";
        }
        auto& list = level == YARA_ERROR_LEVEL_ERROR ? state->errors : state->warnings;
        list.push_back(std::move(text));
    } catch (...) {
        state->lost = true;
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

struct CompiledSources {
    YaraRulesHandle rules;
    std::vector<detail::FileDigest> files;    // the top-level files, as compiled
    std::vector<detail::FileDigest> included; // every included file, sorted by resolved path
    bool reads_file_path = false;
};

Expected<CompiledSources> compile_sources(const std::vector<std::filesystem::path>& files) {
    YR_COMPILER* raw = nullptr;
    if (const int rc = yr_compiler_create(&raw); rc != ERROR_SUCCESS) {
        return make_error(Errc::engine, "cannot create a YARA compiler: error code " + std::to_string(rc));
    }
    const CompilerHandle compiler(raw);
    CompileState state;
    state.compiler = compiler.get();
    yr_compiler_set_callback(compiler.get(), &on_compiler_message, &state);
    yr_compiler_set_include_callback(compiler.get(), &on_include, nullptr, &state);
    for (const char* name : detail::k_yara_externals) {
        if (const int rc = yr_compiler_define_string_variable(compiler.get(), name, "");
            rc != ERROR_SUCCESS) {
            return make_error(Errc::engine, std::string("cannot define the YARA external ") + name +
                                                ": error code " + std::to_string(rc));
        }
    }
    CompiledSources sources;
    bool failed = false;
    for (const auto& file : files) {
        UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) {
            return make_error(Errc::io, errno_message("cannot open " + file.string()));
        }
        auto text = read_text(fd.get(), file); // the text libyara reads next, through the same descriptor
        if (!text) {
            return std::unexpected(text.error());
        }
        sources.reads_file_path = sources.reads_file_path || mentions_path_external(*text);
        sources.files.push_back({file, sha256_hex(*text)});
        state.open_files.assign(1, file);
        const std::string name_space = file.stem().string();
        if (yr_compiler_add_fd(compiler.get(), fd.get(), name_space.c_str(), file.c_str()) != 0) {
            failed = true;
            break; // the compiler is unusable after errors; they are in state.errors
        }
    }
    for (const auto& warning : state.warnings) {
        spdlog::warn("YARA: {}", warning);
    }
    if (failed || !state.errors.empty() || state.lost) {
        return make_error(Errc::invalid_argument, "YARA rules do not compile:" + joined(state.errors));
    }
    for (const auto& [file, text] : state.included) {
        sources.reads_file_path = sources.reads_file_path || mentions_path_external(text);
        sources.included.push_back({file, sha256_hex(text)});
    }
    YR_RULES* rules = nullptr;
    if (const int rc = yr_compiler_get_rules(compiler.get(), &rules); rc != ERROR_SUCCESS) {
        return make_error(Errc::engine, "cannot build the YARA rules: error code " + std::to_string(rc));
    }
    sources.rules.reset(rules);
    return sources;
}

// The top-level files' fingerprint, extended by the included files' when there are any (so rules without
// includes keep the fingerprint they always had).
std::string sources_fingerprint(const CompiledSources& sources) {
    std::string fingerprint = detail::fingerprint_digests(sources.files);
    if (sources.included.empty()) {
        return fingerprint;
    }
    Sha256 hasher;
    hasher.update(fingerprint);
    hasher.update("\nincluded ");
    hasher.update(detail::fingerprint_digests(sources.included));
    const auto digest = hasher.finish();
    return to_hex(digest);
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

    auto impl = std::make_shared<Impl>();
    if (compiled) {
        auto rules = load_compiled(*compiled);
        if (!rules) {
            return std::unexpected(rules.error());
        }
        auto fingerprint = detail::fingerprint_files(*files);
        if (!fingerprint) {
            return std::unexpected(fingerprint.error());
        }
        impl->rules = std::move(*rules);
        impl->info.fingerprint = std::move(*fingerprint);
        impl->info.reads_file_path = true; // no source to check
    } else {
        auto sources = compile_sources(*files);
        if (!sources) {
            return std::unexpected(sources.error());
        }
        impl->info.fingerprint = sources_fingerprint(*sources);
        for (const auto& included : sources->included) {
            impl->info.included_files.push_back(included.file);
        }
        impl->info.reads_file_path = sources->reads_file_path;
        impl->rules = std::move(sources->rules);
    }
    impl->info.rule_count = impl->rules->num_rules;
    impl->info.files = std::move(*files);
    impl->info.engine_version = YR_VERSION;
    spdlog::info("YARA {}: {} rules from {} file(s) and {} included file(s){}", impl->info.engine_version,
                 impl->info.rule_count, impl->info.files.size(), impl->info.included_files.size(),
                 impl->info.reads_file_path ? "; verdicts may depend on file paths" : "");
    return YaraRules(std::move(impl));
}

const YaraRulesInfo& YaraRules::info() const noexcept {
    return m_impl->info;
}

} // namespace coldscan::signatures
