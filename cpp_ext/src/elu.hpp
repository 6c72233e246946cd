// ELU's negative branch, expm1(x) for x <= 0, written so that a loop over it
// vectorizes under strict IEEE semantics: std::expm1 is a scalar libm call and
// took two thirds of the shipped policy's inference time.
#pragma once

#include <cstdint>
#include <cstring>

namespace simreal_rt::detail {

// expm1(x) for x <= 0 with an absolute error below 1e-7 (tests/test_mlp.cpp
// measures it against std::expm1 over [-30, 0]). Branch-free.
inline float expm1_nonpositive(float x) noexcept {
  // expm1(-30) = -1 in float; clamping keeps 2^k normal, and a NaN clamps to -30
  // here (the comparison is false) so the integer conversion below stays defined
  const float xs = x >= -30.0f ? x : -30.0f;
  // xs = k ln2 + r with k integral and |r| <= ln2 / 2. Adding 1.5 * 2^23 rounds
  // to the nearest integer in the current (round-to-nearest) mode.
  constexpr float kShifter = 12582912.0f;
  const float k = (xs * 1.44269504089f + kShifter) - kShifter;
  float r = xs - k * 0.693145752f;  // ln2 split in two (Cody-Waite) so r stays exact
  r = r - k * 1.42860677e-6f;
  // expm1(r) by its Taylor series to r^7 (truncation error < 1e-8 on |r| <= 0.35)
  const float p =
      0.5f + r * (1.0f / 6.0f + r * (1.0f / 24.0f + r * (1.0f / 120.0f + r * (1.0f / 720.0f + r * (1.0f / 5040.0f)))));
  const float expm1_r = r + r * r * p;
  // 2^k from its bit pattern; k is in [-44, 0] here
  const std::int32_t bits = (static_cast<std::int32_t>(k) + 127) * (1 << 23);
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  // expm1(x) = 2^k (1 + expm1(r)) - 1, arranged so that k = 0 gives expm1(r) exactly
  const float result = scale * expm1_r + (scale - 1.0f);
  return x == x ? result : x;  // NaN in, NaN out (the action guard downstream catches it)
}

}  // namespace simreal_rt::detail
