#include "coldscan/common/temp_dir.hpp"

#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>

namespace coldscan {

Expected<TempDir> TempDir::create(std::string_view prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = (base != nullptr && *base != '\0') ? base : "/tmp";
    pattern += "/";
    pattern += prefix;
    pattern += "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) { // mkdtemp creates it 0700
        return make_error(Errc::io, errno_message("cannot create a temporary folder " + pattern));
    }
    return TempDir(std::filesystem::path(pattern));
}

TempDir::TempDir(TempDir&& other) noexcept : m_path(std::exchange(other.m_path, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
    if (this != &other) {
        std::error_code ignored;
        if (!m_path.empty()) {
            std::filesystem::remove_all(m_path, ignored);
        }
        m_path = std::exchange(other.m_path, {});
    }
    return *this;
}

TempDir::~TempDir() {
    if (!m_path.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(m_path, ignored);
    }
}

} // namespace coldscan
