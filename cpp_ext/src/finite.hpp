// Internal helper shared by the core's sources (not installed).
#pragma once

#include <cmath>
#include <cstddef>

namespace simreal_rt::detail {

// A missing array counts as non-finite: callers treat both as "do not use".
inline bool all_finite(const double* values, std::size_t n) noexcept {
  if (values == nullptr) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) return false;
  }
  return true;
}

}  // namespace simreal_rt::detail
