// Text helpers for guest-derived strings: file names and inspection data are untrusted bytes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coldscan {

[[nodiscard]] bool is_valid_utf8(std::string_view bytes);
// For terminal and log lines: control characters, backslash and invalid UTF-8 become \xNN escapes, so a
// file name can never forge or break an output line.
[[nodiscard]] std::string printable(std::string_view bytes);
// As printable(), but a backslash stays as it is: for whole log lines, whose parts were escaped (or not) by
// their callers. Text without control characters and with valid UTF-8 comes back unchanged.
[[nodiscard]] std::string without_controls(std::string_view bytes);
// For JSON strings: valid UTF-8 is kept as is (JSON escapes controls itself); each invalid byte becomes the
// literal text \xNN. Callers that need the exact bytes also record them hex-encoded.
[[nodiscard]] std::string utf8_or_escaped(std::string_view bytes);
[[nodiscard]] std::string hex_encode(std::string_view bytes);
// Where a URI holds passwords, as (offset, length): the user part's ("scheme://user:SECRET@host") and every
// query value after "password=" (a libpq URI's). Empty when it holds none.
[[nodiscard]] std::vector<std::pair<std::size_t, std::size_t>> uri_password_spans(std::string_view uri);
// "1.5 GiB", "312 KiB", "17 B".
[[nodiscard]] std::string format_bytes(std::uint64_t bytes);
// "256M", "1G", "1GiB", "4096" -> bytes (binary multiples, as clamscan reads them); nullopt if malformed.
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view text);
// "30d", "12h", "90m", "45s", "2w", "1d12h" -> seconds; nullopt if malformed or zero-length text.
[[nodiscard]] std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// As parse_duration, and a plain number as seconds ("90"): for options where seconds are the obvious unit.
[[nodiscard]] std::optional<std::chrono::seconds> parse_seconds_or_duration(std::string_view text);
// "1h02m", "3m07s", "12.4s".
[[nodiscard]] std::string format_duration(std::chrono::duration<double> d);

} // namespace coldscan
