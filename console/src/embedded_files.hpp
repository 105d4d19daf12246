// The files of console/static as the build embedded them (console/embed_assets.cmake writes the table).
// Thread rule: plain data; embedded_files() may be called from any thread.
#pragma once

#include <string_view>
#include <vector>

namespace coldscan::console::detail {

struct EmbeddedFile {
    std::string_view path;   // "/static/app.js"
    std::string_view bytes;  // static storage
    std::string_view sha256; // hex, of the bytes
};

[[nodiscard]] std::vector<EmbeddedFile> embedded_files();

} // namespace coldscan::console::detail
