#include "file_fingerprint.hpp"

#include "coldscan/common/content.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>

namespace coldscan::signatures::detail {
namespace {

Expected<std::string> sha256_of_file(const std::filesystem::path& file) {
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return make_error(Errc::io, errno_message("cannot open " + file.string()));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return make_error(Errc::io, errno_message("cannot stat " + file.string()));
    }
    const auto content = Content::from_fd(std::move(fd), static_cast<std::uint64_t>(st.st_size));
    auto digest = sha256_of(content);
    if (!digest) {
        return make_error(digest.error().code, file.string() + ": " + digest.error().message);
    }
    return to_hex(*digest);
}

} // namespace

std::string fingerprint_digests(const std::vector<FileDigest>& digests) {
    Sha256 hasher;
    for (const auto& [file, sha256] : digests) {
        hasher.update(file.filename().string());
        hasher.update(std::string_view("\0", 1));
        hasher.update(sha256);
        hasher.update("\n");
    }
    const auto digest = hasher.finish();
    return to_hex(digest);
}

Expected<std::string> fingerprint_files(const std::vector<std::filesystem::path>& files) {
    std::vector<FileDigest> digests;
    for (const auto& file : files) {
        auto digest = sha256_of_file(file);
        if (!digest) {
            return std::unexpected(digest.error());
        }
        digests.push_back({file, std::move(*digest)});
    }
    return fingerprint_digests(digests);
}

std::string ascii_lower(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return s;
}

} // namespace coldscan::signatures::detail
