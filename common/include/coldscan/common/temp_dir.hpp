// A private (0700) temporary folder, removed with everything in it on destruction.
#pragma once

#include "coldscan/common/error.hpp"

#include <filesystem>

namespace coldscan {

class TempDir {
public:
    // Creates it under $TMPDIR (or /tmp). Error: io.
    static Expected<TempDir> create(std::string_view prefix);
    TempDir(TempDir&& other) noexcept;
    TempDir& operator=(TempDir&& other) noexcept;
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir();

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return m_path; }

private:
    explicit TempDir(std::filesystem::path path) : m_path(std::move(path)) {}
    std::filesystem::path m_path;
};

} // namespace coldscan
