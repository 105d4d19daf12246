// A private (0700) temporary folder, removed with everything in it on destruction.
//
// Its name carries the creating process's id (PREFIX-PID-XXXXXX), so that what a killed process left behind
// can be told from what a running one uses: remove_stale_temp_dirs() removes the former.
#pragma once

#include "coldscan/common/error.hpp"

#include <filesystem>

namespace coldscan {

class TempDir {
public:
    // Creates it under $TMPDIR (or /tmp). Error: io.
    static Expected<TempDir> create(std::string_view prefix);
    // The folder TempDirs are created in: $TMPDIR, or /tmp.
    [[nodiscard]] static std::filesystem::path base();
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

// Removes folders PREFIX[-MORE]-PID-XXXXXX under base that this user owns and whose process is gone (killed
// before its TempDirs could clean up). Returns how many were removed; never touches a live process's.
std::size_t remove_stale_temp_dirs(std::string_view prefix,
                                   const std::filesystem::path& base = TempDir::base());

} // namespace coldscan
