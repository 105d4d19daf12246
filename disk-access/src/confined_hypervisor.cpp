#include "confined_hypervisor.hpp"

#include "coldscan/common/read_fully.hpp"
#include "coldscan/disk/guestfs_image.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

namespace coldscan::disk {
namespace detail {
namespace {

namespace fs = std::filesystem;

constexpr const char* k_view_file = "view";
constexpr std::size_t k_max_view_bytes = 64U << 10;

struct HypervisorView {
    std::string real_hypervisor;
    FileView view;
    fs::path tmpdir;
};

Expected<HypervisorView> parse_view(std::string_view text) {
    HypervisorView parsed;
    while (!text.empty()) {
        const auto end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        const auto space = line.find(' ');
        if (space == std::string_view::npos) {
            continue;
        }
        const std::string_view key = line.substr(0, space);
        const fs::path path(line.substr(space + 1));
        if (key == "exec") {
            parsed.real_hypervisor = path.string();
        } else if (key == "read") {
            parsed.view.read.push_back(path);
        } else if (key == "execute") {
            parsed.view.execute.push_back(path);
        } else if (key == "write") {
            parsed.view.read_write.push_back(path);
        } else if (key == "tmpdir") {
            parsed.tmpdir = path;
        } else {
            return make_error(Errc::invalid_argument, "unknown key in the view file: " + std::string(key));
        }
    }
    if (parsed.real_hypervisor.empty() || parsed.tmpdir.empty()) {
        return make_error(Errc::invalid_argument, "the view file names no qemu or no tmpdir");
    }
    return parsed;
}

Expected<std::string> read_view_file(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return make_error(Errc::io, errno_message("cannot open " + path.string()));
    }
    std::string text(k_max_view_bytes, '\0');
    int error = 0;
    const std::size_t got = read_fully(fd, 0, std::as_writable_bytes(std::span(text)), error);
    ::close(fd);
    if (error != 0) {
        return make_error(Errc::io, errno_message("cannot read " + path.string(), error));
    }
    text.resize(got);
    return text;
}

int refuse(const std::string& why) {
    std::fprintf(stderr, "coldscan: cannot start the appliance's qemu confined: %s\n", why.c_str());
    return 1;
}

} // namespace

Expected<std::string> hypervisor_view_text(const std::string& real_hypervisor, const FileView& view,
                                           const fs::path& tmpdir) {
    std::string text;
    bool line_break = false;
    const auto add = [&](std::string_view key, const std::string& path) {
        line_break = line_break || path.find('\n') != std::string::npos;
        text.append(key).append(" ").append(path).append("\n");
    };
    add("exec", real_hypervisor);
    add("tmpdir", tmpdir.string());
    for (const auto& path : view.execute) {
        add("execute", path.string());
    }
    for (const auto& path : view.read) {
        add("read", path.string());
    }
    for (const auto& path : view.read_write) {
        add("write", path.string());
    }
    if (line_break) {
        return make_error(Errc::invalid_argument, "a path of the appliance's file view has a line break");
    }
    return text;
}

Expected<fs::path> prepare_confined_hypervisor(const fs::path& folder, const std::string& real_hypervisor,
                                               const FileView& view, const fs::path& tmpdir) {
    auto text = hypervisor_view_text(real_hypervisor, view, tmpdir);
    if (!text) {
        return std::unexpected(text.error());
    }
    const fs::path view_path = folder / k_view_file;
    const int fd = ::open(view_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return make_error(Errc::io, errno_message("cannot create " + view_path.string()));
    }
    const bool written = ::write(fd, text->data(), text->size()) == static_cast<ssize_t>(text->size());
    ::close(fd);
    if (!written) {
        return make_error(Errc::io, errno_message("cannot write " + view_path.string()));
    }
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) {
        return make_error(Errc::io, "cannot find coldscan's own executable: " + ec.message());
    }
    const fs::path link = folder / k_confined_hypervisor_name;
    fs::create_symlink(self, link, ec);
    if (ec) {
        return make_error(Errc::io, "cannot create " + link.string() + ": " + ec.message());
    }
    return link;
}

} // namespace detail

std::optional<int> run_confined_hypervisor_if_asked(int argc, char** argv) {
    if (argc < 1 || argv[0] == nullptr ||
        std::filesystem::path(argv[0]).filename() != detail::k_confined_hypervisor_name) {
        return std::nullopt;
    }
    const auto view_path = std::filesystem::path(argv[0]).parent_path() / detail::k_view_file;
    auto text = detail::read_view_file(view_path);
    if (!text) {
        return detail::refuse(text.error().message);
    }
    auto parsed = detail::parse_view(*text);
    if (!parsed) {
        return detail::refuse(parsed.error().message);
    }
    // Without Landlock qemu runs unconfined: coldscan's own process said so once (build_file_view_or_warn).
    auto rules = FileViewRules::build(parsed->view);
    if (!rules && rules.error().code != Errc::unsupported) {
        return detail::refuse(rules.error().message);
    }
    if (::setenv("TMPDIR", parsed->tmpdir.c_str(), 1) != 0 || ::chdir(parsed->tmpdir.c_str()) != 0) {
        return detail::refuse(errno_message("cannot enter " + parsed->tmpdir.string()));
    }
    if (rules && rules->enforce() != 0) {
        return detail::refuse(errno_message("Landlock refused the view"));
    }
    std::vector<char*> args(argv, argv + argc);
    args[0] = parsed->real_hypervisor.data();
    args.push_back(nullptr);
    ::execvp(parsed->real_hypervisor.c_str(), args.data());
    return detail::refuse(errno_message("cannot run " + parsed->real_hypervisor));
}

} // namespace coldscan::disk
