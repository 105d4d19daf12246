// Private: what compiled YaraRules hold (shared by yara_rules.cpp and yara_scanner.cpp).
#pragma once

#include "coldscan/common/c_handle.hpp"
#include "coldscan/signatures/yara_rules.hpp"

#include <string_view>
#include <yara.h>

namespace coldscan::signatures {

// Thread rule: shared, immutable once compiled; each thread scans through its own YR_SCANNER.
using YaraRulesHandle = CHandle<YR_RULES, yr_rules_destroy>;

struct YaraRules::Impl {
    YaraRulesHandle rules;
    YaraRulesInfo info;
};

namespace detail {

// The external variables every rule set may use; defined (empty) at compile time, set per scanned file.
inline constexpr const char* k_yara_externals[] = {"filename", "filepath", "extension", "filetype", "owner"};

// The externals set from the scanned file's guest path (the others are always ""): a rule reading one of them
// can match the same bytes at one path and not at another.
inline constexpr std::string_view k_yara_path_externals[] = {"filename", "filepath", "extension"};
static_assert(k_yara_path_externals[0] == k_yara_externals[0] &&
              k_yara_path_externals[1] == k_yara_externals[1] &&
              k_yara_path_externals[2] == k_yara_externals[2]);

} // namespace detail
} // namespace coldscan::signatures
