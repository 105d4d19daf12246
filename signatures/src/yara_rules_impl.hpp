// Private: what compiled YaraRules hold (shared by yara_rules.cpp and yara_scanner.cpp).
#pragma once

#include "coldscan/common/c_handle.hpp"
#include "coldscan/signatures/yara_rules.hpp"

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

} // namespace detail
} // namespace coldscan::signatures
