// Safetensors reader for untrusted files (F32 tensors only) and SHA-256.
// Knows nothing of Python or ROS; no third-party dependencies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace simreal_rt {

// Every problem found while loading a bundle (malformed file, bad tensor,
// missing tensor, mismatched network shapes) is reported with this type. The
// message may quote untrusted bytes: control characters and invalid UTF-8 are
// stored as \xNN, so it is always printable text.
class BundleError : public std::runtime_error {
 public:
  explicit BundleError(const std::string& message);
};

struct Tensor {
  std::vector<int64_t> shape;  // every dimension >= 0
  std::vector<float> data;     // row-major copy, size == product of shape
  std::size_t numel() const { return data.size(); }
};

class SafetensorsFile {
 public:
  // Upper bound on the JSON header length (bytes).
  static constexpr std::uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

  // Parse and validate the whole buffer; throws BundleError on any problem.
  static SafetensorsFile from_bytes(std::vector<unsigned char> bytes);
  // Read the file fully, then from_bytes(); throws BundleError on I/O errors.
  static SafetensorsFile from_file(const std::string& path);

  bool has(const std::string& name) const;
  // Throws BundleError naming the missing tensor.
  const Tensor& get(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// SHA-256 of a byte buffer as 64 lowercase hex characters.
std::string sha256_hex(const unsigned char* data, std::size_t size);
std::string sha256_hex(const std::vector<unsigned char>& bytes);

}  // namespace simreal_rt
