// Reading integers out of untrusted JSON. nlohmann's get<T>() converts a float or an out-of-range integer
// with a plain cast, which is undefined behaviour for values T cannot hold; these refuse them instead.
// Header-only: only modules that already use nlohmann/json include it.
#pragma once

#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

namespace coldscan {

// j as T; throws nlohmann::json::type_error unless j is an integer that T holds.
template <typename T> [[nodiscard]] T json_integer(const nlohmann::json& j) {
    static_assert(std::is_integral_v<T>);
    if (j.is_number_unsigned()) {
        const auto value = j.get<std::uint64_t>();
        if (value <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
            return static_cast<T>(value);
        }
    } else if (j.is_number_integer()) {
        const auto value = j.get<std::int64_t>();
        if constexpr (std::is_signed_v<T>) {
            if (value >= std::numeric_limits<T>::min() && value <= std::numeric_limits<T>::max()) {
                return static_cast<T>(value);
            }
        } else if (value >= 0 && static_cast<std::uint64_t>(value) <= std::numeric_limits<T>::max()) {
            return static_cast<T>(value);
        }
    }
    throw nlohmann::json::type_error::create(302, "expected an integer in range, got " + j.dump(), &j);
}

} // namespace coldscan
