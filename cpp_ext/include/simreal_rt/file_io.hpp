// Reading whole files for the loaders and tools.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace simreal_rt {

// Whole regular file as bytes; std::runtime_error naming the path if it cannot
// be read, is not a regular file (a FIFO or /dev/zero would never end) or is
// larger than max_bytes (checked before reading).
std::vector<unsigned char> read_file_bytes(const std::string& path, std::size_t max_bytes = std::size_t(1) << 31);

}  // namespace simreal_rt
