// Test helpers: a tiny CHECK macro and a safetensors serializer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace test_util {

// The message of the exception of type E that f throws, or "" if it throws none.
template <class E, class F>
std::string message_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// The message of the std::invalid_argument that f throws, or "" if it throws none.
template <class F>
std::string error_of(F f) {
  return message_of<std::invalid_argument>(f);
}

// Whether text contains part; prints both when not, so a failed CHECK says what was there.
inline bool contains(const std::string& text, const std::string& part) {
  const bool found = text.find(part) != std::string::npos;
  if (!found) std::fprintf(stderr, "  expected '%s' in: '%s'\n", part.c_str(), text.c_str());
  return found;
}

inline int g_checks = 0;
inline int g_failures = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    ++test_util::g_checks;                                                          \
    if (!(cond)) {                                                                  \
      ++test_util::g_failures;                                                      \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                               \
  } while (0)

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Raw file from an explicit header string and data bytes (header padded with
// spaces to a multiple of 8, as the reference writer does).
inline std::vector<unsigned char> raw_file(std::string header, const std::vector<unsigned char>& data,
                                           bool pad = true) {
  while (pad && header.size() % 8 != 0) header += ' ';
  std::vector<unsigned char> out(8);
  const std::uint64_t n = header.size();
  for (int k = 0; k < 8; ++k) out[static_cast<std::size_t>(k)] = static_cast<unsigned char>(n >> (8 * k));
  // byte by byte: GCC 12 at -O2 misreads the bounds of a bulk insert here (false -Werror hits)
  out.reserve(8 + header.size() + data.size());
  for (const char c : header) out.push_back(static_cast<unsigned char>(c));
  for (const unsigned char b : data) out.push_back(b);
  return out;
}

inline std::string json_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') { r += '\\'; r += c; }
    else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      r += buf;
    } else r += c;
  }
  return r;
}

// Serialize F32 tensors (little-endian) laid out back to back in the given order.
inline std::vector<unsigned char> serialize(const std::vector<TensorSpec>& tensors,
                                            const std::vector<std::pair<std::string, std::string>>& meta = {}) {
  std::string h = "{";
  bool first = true;
  if (!meta.empty()) {
    h += "\"__metadata__\":{";
    for (std::size_t i = 0; i < meta.size(); ++i)
      h += (i ? "," : "") + ("\"" + json_escape(meta[i].first) + "\":\"" + json_escape(meta[i].second) + "\"");
    h += "}";
    first = false;
  }
  std::vector<unsigned char> data;
  for (const TensorSpec& t : tensors) {
    const std::size_t begin = data.size();
    for (float f : t.values) {
      std::uint32_t u;
      std::memcpy(&u, &f, 4);
      for (int k = 0; k < 4; ++k) data.push_back(static_cast<unsigned char>(u >> (8 * k)));
    }
    if (!first) h += ",";
    first = false;
    h += "\"" + json_escape(t.name) + "\":{\"dtype\":\"F32\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) h += (i ? "," : "") + std::to_string(t.shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
  }
  h += "}";
  return raw_file(h, data);
}

inline int finish(const char* name) {
  std::printf("%s: %d checks, %d failures\n", name, g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace test_util
