#include "support.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <mutex>
#include <openssl/evp.h>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace coldscan::e2e {

namespace {

fs::path dir_from_env(const char* variable, const char* fallback) {
    if (const char* value = std::getenv(variable); value != nullptr && *value != '\0') {
        return value;
    }
    return fallback;
}

template <auto Free> struct CDeleter {
    template <typename T> void operator()(T* p) const noexcept { Free(p); }
};
using EvpContext = std::unique_ptr<EVP_MD_CTX, CDeleter<EVP_MD_CTX_free>>;

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::string decode_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        throw std::runtime_error("odd-length hex string: " + std::string(hex));
    }
    std::string bytes;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int high = hex_value(hex[i]);
        const int low = hex_value(hex[i + 1]);
        if (high < 0 || low < 0) {
            throw std::runtime_error("not a hex string: " + std::string(hex));
        }
        bytes.push_back(static_cast<char>(high * 16 + low));
    }
    return bytes;
}

// Path of `file` relative to `root`, as a string with a leading '/'.
std::string relative_with_slash(const fs::path& file, const fs::path& root) {
    const std::string full = file.string();
    const std::string prefix = root.string();
    if (full.compare(0, prefix.size(), prefix) != 0) {
        throw std::runtime_error("path " + full + " is not under " + prefix);
    }
    std::string rest = full.substr(prefix.size());
    if (rest.empty() || rest.front() != '/') {
        rest.insert(rest.begin(), '/');
    }
    return rest;
}

std::mutex g_cache_mutex;

} // namespace

fs::path fixtures_dir() {
    return dir_from_env("COLDSCAN_E2E_FIXTURES", COLDSCAN_E2E_FIXTURES_DIR);
}
fs::path results_dir() {
    return dir_from_env("COLDSCAN_E2E_RESULTS", COLDSCAN_E2E_RESULTS_DIR);
}
fs::path source_dir() {
    return COLDSCAN_SOURCE_DIR;
}

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + file.string());
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(line);
    }
    return lines;
}

std::string to_lower(std::string text) {
    std::ranges::transform(text, text.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

bool is_sha256_hex(const std::string& text) {
    return text.size() == 64 && std::ranges::all_of(text, [](char c) { return hex_value(c) >= 0; }) &&
           to_lower(text) == text;
}

const ScanRun& load_scan(const std::string& name) {
    static std::map<std::string, ScanRun> cache;
    const std::lock_guard lock(g_cache_mutex);
    if (auto found = cache.find(name); found != cache.end()) {
        return found->second;
    }
    const fs::path base = results_dir() / name;
    const fs::path exit_file = fs::path(base.string() + ".exit");
    if (!fs::exists(exit_file)) {
        throw std::runtime_error("scan '" + name + "' has not run: " + exit_file.string() +
                                 " is missing (run ctest -R e2e.scan." + name + ")");
    }
    ScanRun run;
    run.name = name;
    run.exit_code = std::stoi(read_file(exit_file));
    run.out = read_file(base.string() + ".stdout");
    run.err = read_file(base.string() + ".stderr");
    if (fs::exists(base.string() + ".cmd")) {
        run.command = read_file(base.string() + ".cmd");
    }
    if (const fs::path report = base.string() + ".report.json"; fs::exists(report)) {
        run.report = Json::parse(read_file(report)); // a parse error fails the test with its message
    }
    if (const fs::path inventory = base.string() + ".inventory.jsonl"; fs::exists(inventory)) {
        std::vector<Json> lines;
        for (const auto& line : lines_of(read_file(inventory))) {
            if (!line.empty()) {
                lines.push_back(Json::parse(line));
            }
        }
        run.inventory = std::move(lines);
    }
    return cache.emplace(name, std::move(run)).first->second;
}

std::string unescape_bytes(std::string_view text) {
    std::string bytes;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] == 'x' && hex_value(text[i + 2]) >= 0 &&
            hex_value(text[i + 3]) >= 0) {
            bytes.push_back(static_cast<char>(hex_value(text[i + 2]) * 16 + hex_value(text[i + 3])));
            i += 3;
        } else {
            bytes.push_back(text[i]);
        }
    }
    return bytes;
}

std::string raw_field(const Json& object, const std::string& field) {
    if (const auto hex = object.find(field + "_hex"); hex != object.end() && hex->is_string()) {
        return decode_hex(hex->get<std::string>());
    }
    return object.at(field).get<std::string>();
}

std::set<ExpectedHit> expected_hits(const std::set<std::string>& labels) {
    std::set<ExpectedHit> hits;
    const fs::path list = source_dir() / "tests/fixtures/expected-detections.tsv";
    for (const auto& line : lines_of(read_file(list))) {
        if (line.empty() || line.front() == '#') {
            continue;
        }
        const auto tab1 = line.find('\t');
        const auto tab2 = line.find('\t', tab1 + 1);
        if (tab1 == std::string::npos || tab2 == std::string::npos) {
            throw std::runtime_error("bad line in " + list.string() + ": " + line);
        }
        ExpectedHit hit{line.substr(0, tab1), unescape_bytes(line.substr(tab1 + 1, tab2 - tab1 - 1)),
                        line.substr(tab2 + 1)};
        if (labels.empty() || labels.contains(hit.label)) {
            hits.insert(std::move(hit));
        }
    }
    return hits;
}

std::string sha256_of_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + file.string());
    }
    EvpContext context(EVP_MD_CTX_new());
    if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("EVP_DigestInit_ex failed");
    }
    std::array<char, 1 << 16> buffer{};
    while (in) {
        in.read(buffer.data(), buffer.size());
        if (in.gcount() > 0) {
            EVP_DigestUpdate(context.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
        }
    }
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    EVP_DigestFinal_ex(context.get(), digest.data(), &length);
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
        hex.push_back(k_hex[digest[i] >> 4]);
        hex.push_back(k_hex[digest[i] & 0xf]);
    }
    return hex;
}

std::string run_capture(const std::vector<std::string>& argv, int* status, bool keep_stderr) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    if (keep_stderr) {
        posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    }
    std::vector<char*> args;
    for (const auto& arg : argv) {
        args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    pid_t pid = 0;
    const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_fds[1]);
    if (spawned != 0) {
        close(pipe_fds[0]);
        throw std::runtime_error("cannot run " + argv[0]);
    }
    std::string output;
    std::array<char, 1 << 14> buffer{};
    for (;;) {
        const ssize_t n = read(pipe_fds[0], buffer.data(), buffer.size());
        if (n > 0) {
            output.append(buffer.data(), static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    close(pipe_fds[0]);
    int wait_status = 0;
    while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
    const int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
    if (status != nullptr) {
        *status = code;
    }
    return output;
}

Json qemu_img_info(const fs::path& file) {
    int status = 0;
    const std::string out = run_capture({"qemu-img", "info", "--output=json", file.string()}, &status);
    if (status != 0) {
        throw std::runtime_error("qemu-img info " + file.string() + " failed");
    }
    return Json::parse(out);
}

const TreeIndex& index_tree(const fs::path& tree) {
    static std::map<fs::path, TreeIndex> cache;
    const std::lock_guard lock(g_cache_mutex);
    if (auto found = cache.find(tree); found != cache.end()) {
        return found->second;
    }
    if (!fs::is_directory(tree)) {
        throw std::runtime_error("fixture tree " + tree.string() + " is missing (run ctest -R e2e.fixtures)");
    }
    TreeIndex index;
    std::set<std::uintmax_t> inodes;
    for (const auto& entry : fs::recursive_directory_iterator(tree)) {
        const auto status = entry.symlink_status();
        const std::string relative = relative_with_slash(entry.path(), tree);
        if (fs::is_directory(status)) {
            continue;
        }
        if (!fs::is_regular_file(status)) {
            index.special.insert(relative);
            continue;
        }
        struct stat st {};
        if (lstat(entry.path().c_str(), &st) != 0) {
            throw std::runtime_error("cannot stat " + entry.path().string());
        }
        TreeFile file{static_cast<std::uintmax_t>(st.st_size), static_cast<std::uintmax_t>(st.st_ino),
                      sha256_of_file(entry.path())};
        if (inodes.insert(file.inode).second) {
            ++index.distinct_files;
            index.distinct_bytes += file.size;
        } else {
            ++index.hardlink_names;
        }
        index.regular.emplace(relative, std::move(file));
    }
    return cache.emplace(tree, std::move(index)).first->second;
}

const std::set<Finding>& reference_findings(const std::string& label, const fs::path& tree) {
    static std::map<fs::path, std::set<Finding>> cache;
    {
        const std::lock_guard lock(g_cache_mutex);
        if (auto found = cache.find(tree); found != cache.end()) {
            return found->second;
        }
    }
    const fs::path sigs = fixtures_dir() / "sigs";
    std::set<Finding> findings;

    // clamscan: "PATH: NAME FOUND" per match. --max-dir-recursion: the default (15) would silently skip the
    // 20-level deep sample.
    int status = 0;
    const std::string clam =
        run_capture({"clamscan", "--no-summary", "--infected", "--recursive", "--allmatch",
                     "--max-dir-recursion=100", "--database=" + (sigs / "clamav").string(), tree.string()},
                    &status);
    if (status != 0 && status != 1) {
        throw std::runtime_error("clamscan failed on " + tree.string());
    }
    for (const auto& line : lines_of(clam)) {
        static constexpr std::string_view k_found = " FOUND";
        if (!line.ends_with(k_found)) {
            continue;
        }
        const std::string body = line.substr(0, line.size() - k_found.size());
        const auto colon = body.rfind(": ");
        findings.insert(
            {label, relative_with_slash(body.substr(0, colon), tree), "clamav", body.substr(colon + 2)});
    }

    // yara: "RULE PATH" per match, over every rule file, no symlink following (like coldscan).
    std::vector<std::string> yara{"yara", "--recursive", "--no-follow-symlinks", "--no-warnings"};
    std::set<fs::path> rule_files;
    for (const auto& entry : fs::directory_iterator(sigs / "yara")) {
        rule_files.insert(entry.path());
    }
    for (const auto& file : rule_files) {
        yara.push_back(file.string());
    }
    yara.push_back(tree.string());
    const std::string yara_out = run_capture(yara, &status);
    if (status != 0) {
        throw std::runtime_error("yara failed on " + tree.string());
    }
    for (const auto& line : lines_of(yara_out)) {
        const auto space = line.find(' ');
        if (space == std::string::npos) {
            continue;
        }
        findings.insert(
            {label, relative_with_slash(line.substr(space + 1), tree), "yara", line.substr(0, space)});
    }

    const std::lock_guard lock(g_cache_mutex);
    return cache.emplace(tree, std::move(findings)).first->second;
}

std::map<std::string, std::vector<std::string>> reference_yara_tags(const fs::path& tree) {
    std::vector<std::string> yara{"yara", "--recursive", "--no-follow-symlinks", "--no-warnings",
                                  "--print-tags"};
    std::set<fs::path> rule_files;
    for (const auto& entry : fs::directory_iterator(fixtures_dir() / "sigs/yara")) {
        rule_files.insert(entry.path());
    }
    for (const auto& file : rule_files) {
        yara.push_back(file.string());
    }
    yara.push_back(tree.string());
    std::map<std::string, std::vector<std::string>> tags;
    for (const auto& line : lines_of(run_capture(yara))) {
        // "RULE [tag1,tag2] PATH"
        const auto open = line.find(" [");
        const auto close = line.find("] ", open);
        if (open == std::string::npos || close == std::string::npos) {
            continue;
        }
        std::vector<std::string> rule_tags;
        std::istringstream list(line.substr(open + 2, close - open - 2));
        std::string tag;
        while (std::getline(list, tag, ',')) {
            if (!tag.empty()) {
                rule_tags.push_back(tag);
            }
        }
        tags[line.substr(0, open)] = rule_tags;
    }
    return tags;
}

namespace {
// The first token after `prefix` in `text`, up to a '/' or whitespace.
std::string version_after(const std::string& text, const std::string& prefix) {
    const auto start = text.find(prefix);
    if (start == std::string::npos) {
        return "";
    }
    const auto begin = start + prefix.size();
    const auto end = text.find_first_of("/ \n", begin);
    return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}
} // namespace

std::string clamscan_version() {
    return version_after(run_capture({"clamscan", "--version"}), "ClamAV ");
}

std::string yara_version() {
    const auto lines = lines_of(run_capture({"yara", "--version"}));
    return lines.empty() ? "" : lines.front();
}

std::size_t generated_clamav_signature_count() {
    std::size_t count = 0;
    for (const auto& entry : fs::directory_iterator(fixtures_dir() / "sigs/clamav")) {
        for (const auto& line : lines_of(read_file(entry.path()))) {
            count += line.empty() ? 0 : 1;
        }
    }
    return count;
}

std::ostream& operator<<(std::ostream& out, const Finding& finding) {
    return out << "(" << finding.label << ", " << finding.path << ", " << finding.engine << ", "
               << finding.signature << ")";
}

std::ostream& operator<<(std::ostream& out, const ExpectedHit& hit) {
    return out << "(" << hit.label << ", " << hit.path << ", " << hit.engine << ")";
}

std::map<std::string, std::string> device_labels(const Json& report, const std::string& dir_label) {
    std::map<std::string, std::string> labels{{"", dir_label}};
    for (const auto& target : report.at("targets")) {
        if (!target.contains("filesystems")) {
            continue;
        }
        for (const auto& filesystem : target.at("filesystems")) {
            if (filesystem.contains("label") && filesystem.at("label").is_string()) {
                labels[filesystem.at("device").get<std::string>()] = raw_field(filesystem, "label");
            }
        }
    }
    return labels;
}

std::set<Finding> report_findings(const Json& report, const std::string& dir_label) {
    const auto labels = device_labels(report, dir_label);
    std::set<Finding> findings;
    for (const auto& detection : report.at("detections")) {
        const std::string device = detection.at("device").get<std::string>();
        const auto label = labels.find(device);
        findings.insert({label == labels.end() ? "<unlabelled " + device + ">" : label->second,
                         raw_field(detection, "path"), detection.at("engine").get<std::string>(),
                         detection.at("signature").get<std::string>()});
    }
    return findings;
}

} // namespace coldscan::e2e
