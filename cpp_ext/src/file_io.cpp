#include "simreal_rt/file_io.hpp"

#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace simreal_rt {

std::vector<unsigned char> read_file_bytes(const std::string& path, std::size_t max_bytes) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) throw std::runtime_error("cannot open '" + path + "'");
  if (!S_ISREG(info.st_mode)) throw std::runtime_error("'" + path + "' is not a regular file");
  if (static_cast<unsigned long long>(info.st_size) > max_bytes)
    throw std::runtime_error("'" + path + "' is " + std::to_string(info.st_size) + " bytes, over the limit of " +
                             std::to_string(max_bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<unsigned char> bytes;
  bytes.reserve(static_cast<std::size_t>(info.st_size));
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error("error reading '" + path + "'");
  if (bytes.size() > max_bytes) throw std::runtime_error("'" + path + "' grew past the limit while being read");
  return bytes;
}

}  // namespace simreal_rt
