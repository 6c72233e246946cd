#include "simreal_rt/file_io.hpp"

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace simreal_rt {

std::vector<unsigned char> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error("error reading '" + path + "'");
  return bytes;
}

}  // namespace simreal_rt
