#include "coldscan/common/replace_file.hpp"

#include <fstream>
#include <unistd.h>

namespace coldscan {

Expected<void> replace_file(const std::filesystem::path& path, std::string_view text) {
    std::filesystem::path temp = path;
    temp += ".tmp-" + std::to_string(::getpid());
    {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        out.flush();
        if (!out) {
            std::error_code ignored;
            std::filesystem::remove(temp, ignored);
            return make_error(Errc::io, "cannot write " + path.string());
        }
    }
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    if (ec) {
        std::filesystem::remove(temp, ec);
        return make_error(Errc::io, "cannot write " + path.string() + ": " + ec.message());
    }
    return {};
}

} // namespace coldscan
