// Naming helpers shared by the network loaders (internal to the core).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "simreal_rt/safetensors.hpp"

namespace simreal_rt::detail {

// "[3, 45]" for messages.
inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// The index l of a tensor named "<prefix><l>.<field>" with field one of `fields`, or -1.
inline long layer_index(const std::string& name, const std::string& prefix, std::initializer_list<const char*> fields) {
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  std::size_t p = prefix.size();
  const std::size_t start = p;
  long index = 0;
  while (p < name.size() && name[p] >= '0' && name[p] <= '9' && p - start < 9) index = index * 10 + (name[p++] - '0');
  if (p == start || p >= name.size() || name[p] != '.') return -1;
  const std::string rest = name.substr(p + 1);
  for (const char* field : fields)
    if (rest == field) return index;
  return -1;
}

[[noreturn]] inline void tensor_error(const std::string& tensor, const std::string& what) {
  throw BundleError("tensor '" + tensor + "': " + what);
}

}  // namespace simreal_rt::detail
