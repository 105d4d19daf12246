// The catalogue digests of ClamAV databases read before, remembered in a folder (the verdict cache's), so a
// set seen before is known without unpacking and digesting its lines again (~0.8 s per million signatures,
// before the first verdict can be looked up). Keyed by the databases' whole-file fingerprint (names and
// SHA-256 of contents) and the catalogue's version: the digests are a function of exactly that.
// Thread rule: free functions; writers of one key write the same bytes, each file is replaced whole.
#pragma once

#include "coldscan/signatures/signature_catalogue.hpp"

#include <filesystem>
#include <optional>
#include <string_view>

namespace coldscan::signatures::detail {

// nullopt when the folder holds none for these files, or what it holds is not a well-formed digest.
[[nodiscard]] std::optional<CatalogueDigest> recall_catalogue_digest(const std::filesystem::path& folder,
                                                                     std::string_view files_fingerprint);
// Creates the folder if need be. A failure is logged and otherwise ignored: the memo only saves time.
void remember_catalogue_digest(const std::filesystem::path& folder, std::string_view files_fingerprint,
                               const CatalogueDigest& digest);

} // namespace coldscan::signatures::detail
