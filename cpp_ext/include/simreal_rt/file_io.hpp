// Reading whole files for the loaders and tools.
#pragma once

#include <string>
#include <vector>

namespace simreal_rt {

// Whole file as bytes; std::runtime_error naming the path if it cannot be read.
std::vector<unsigned char> read_file_bytes(const std::string& path);

}  // namespace simreal_rt
