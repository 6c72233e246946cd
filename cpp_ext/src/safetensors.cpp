// Safetensors reader: a minimal hand-written JSON parser (objects, arrays,
// strings with escapes, non-negative integers; nothing else) plus strict
// validation of every tensor entry. The input is treated as untrusted.
#include "simreal_rt/safetensors.hpp"

#include "utf8.hpp"

#include "simreal_rt/file_io.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

namespace simreal_rt {

BundleError::BundleError(const std::string& message) : std::runtime_error(detail::printable(message)) {}


namespace {

// ---------------------------------------------------------------- JSON ----

struct JValue {
  enum Kind { kObject, kArray, kString, kInt } kind = kInt;
  std::uint64_t i = 0;
  std::string s;
  std::vector<std::pair<std::string, JValue>> obj;  // insertion order
  std::vector<JValue> arr;
};

const char* kind_name(JValue::Kind k) {
  switch (k) {
    case JValue::kObject: return "an object";
    case JValue::kArray: return "an array";
    case JValue::kString: return "a string";
    case JValue::kInt: return "an integer";
  }
  return "?";
}

class JsonParser {
 public:
  JsonParser(const char* p, std::size_t n) : p_(p), n_(n) {}

  JValue parse_document() {
    skip_ws();
    if (peek() != '{') fail("the header must be a JSON object");
    JValue v = parse_value(0);
    skip_ws();
    if (pos_ != n_) fail("trailing characters after the JSON object");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 8;  // the format needs 3

  [[noreturn]] void fail(const std::string& what) const {
    throw BundleError("safetensors header: invalid JSON at byte " + std::to_string(pos_) +
                      ": " + what);
  }
  int peek() const { return pos_ < n_ ? static_cast<unsigned char>(p_[pos_]) : -1; }
  void skip_ws() {
    while (pos_ < n_ && (p_[pos_] == ' ' || p_[pos_] == '\t' || p_[pos_] == '\n' ||
                         p_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != static_cast<unsigned char>(c)) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  JValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    skip_ws();
    const int c = peek();
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') {
      JValue v;
      v.kind = JValue::kString;
      v.s = parse_string();
      return v;
    }
    if (c >= '0' && c <= '9') return parse_int();
    if (c < 0) fail("unexpected end of header");
    fail("unsupported value (only objects, arrays, strings and non-negative integers)");
  }

  JValue parse_object(int depth) {
    JValue v;
    v.kind = JValue::kObject;
    expect('{');
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return v;
    }
    for (;;) {
      skip_ws();
      if (peek() != '"') fail("expected a string key");
      std::string key = parse_string();
      for (const auto& kv : v.obj)
        if (kv.first == key) fail("duplicate key '" + key + "'");
      skip_ws();
      expect(':');
      JValue child = parse_value(depth + 1);
      v.obj.emplace_back(std::move(key), std::move(child));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      return v;
    }
  }

  JValue parse_array(int depth) {
    JValue v;
    v.kind = JValue::kArray;
    expect('[');
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return v;
    }
    for (;;) {
      v.arr.push_back(parse_value(depth + 1));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']');
      return v;
    }
  }

  JValue parse_int() {
    JValue v;
    v.kind = JValue::kInt;
    const std::size_t start = pos_;
    std::uint64_t x = 0;
    while (peek() >= '0' && peek() <= '9') {
      const std::uint64_t d = static_cast<std::uint64_t>(peek() - '0');
      if (x > (std::numeric_limits<std::uint64_t>::max() - d) / 10) fail("integer too large");
      x = x * 10 + d;
      ++pos_;
    }
    if (pos_ - start > 1 && p_[start] == '0') fail("leading zero in integer");
    const int c = peek();
    if (c == '.' || c == 'e' || c == 'E') fail("only non-negative integers are supported");
    v.i = x;
    return v;
  }

  unsigned parse_hex4() {
    if (n_ - pos_ < 4) fail("truncated \\u escape");
    unsigned u = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = p_[pos_++];
      u <<= 4;
      if (h >= '0' && h <= '9') u |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f') u |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') u |= static_cast<unsigned>(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return u;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    for (;;) {
      if (pos_ >= n_) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(p_[pos_++]);
      if (c == '"') return out;
      if (c < 0x20) fail("control character in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (pos_ >= n_) fail("unterminated escape");
      const char e = p_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = parse_hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (n_ - pos_ < 2 || p_[pos_] != '\\' || p_[pos_ + 1] != 'u')
              fail("unpaired surrogate in \\u escape");
            pos_ += 2;
            const unsigned lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  const char* p_;
  std::size_t n_;
  std::size_t pos_ = 0;
};

// ------------------------------------------------------------ tensors ----

struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

[[noreturn]] void tensor_fail(const std::string& name, const std::string& what) {
  throw BundleError("tensor '" + name + "': " + what);
}

std::string offsets_str(std::uint64_t b, std::uint64_t e) {
  return "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "]";
}

Entry parse_entry(const std::string& name, const JValue& v) {
  if (v.kind != JValue::kObject) tensor_fail(name, std::string("entry is ") + kind_name(v.kind) + ", expected an object");
  const JValue* dtype = nullptr;
  const JValue* shape = nullptr;
  const JValue* offsets = nullptr;
  for (const auto& kv : v.obj) {
    if (kv.first == "dtype") dtype = &kv.second;
    else if (kv.first == "shape") shape = &kv.second;
    else if (kv.first == "data_offsets") offsets = &kv.second;
    else tensor_fail(name, "unknown field '" + kv.first + "'");
  }
  if (!dtype) tensor_fail(name, "missing field 'dtype'");
  if (!shape) tensor_fail(name, "missing field 'shape'");
  if (!offsets) tensor_fail(name, "missing field 'data_offsets'");
  if (dtype->kind != JValue::kString) tensor_fail(name, "dtype must be a string");
  if (dtype->s != "F32") tensor_fail(name, "dtype '" + dtype->s + "' is not supported (only F32)");

  Entry e;
  e.name = name;
  if (shape->kind != JValue::kArray) tensor_fail(name, "shape must be an array");
  std::uint64_t numel = 1;
  for (const JValue& d : shape->arr) {
    if (d.kind != JValue::kInt) tensor_fail(name, "shape entries must be non-negative integers");
    if (d.i > static_cast<std::uint64_t>(std::numeric_limits<int64_t>::max()))
      tensor_fail(name, "shape value " + std::to_string(d.i) + " is too large");
    if (d.i != 0 && numel > std::numeric_limits<std::uint64_t>::max() / d.i)
      tensor_fail(name, "shape product overflows");
    numel *= d.i;
    e.shape.push_back(static_cast<int64_t>(d.i));
  }
  if (numel > std::numeric_limits<std::uint64_t>::max() / 4)
    tensor_fail(name, "shape product overflows");
  const std::uint64_t nbytes = numel * 4;

  if (offsets->kind != JValue::kArray || offsets->arr.size() != 2 ||
      offsets->arr[0].kind != JValue::kInt || offsets->arr[1].kind != JValue::kInt)
    tensor_fail(name, "data_offsets must be an array of two non-negative integers");
  e.begin = offsets->arr[0].i;
  e.end = offsets->arr[1].i;
  if (e.end < e.begin) tensor_fail(name, offsets_str(e.begin, e.end) + " end before begin");
  if (e.end - e.begin != nbytes)
    tensor_fail(name, offsets_str(e.begin, e.end) + " span " + std::to_string(e.end - e.begin) +
                          " bytes but the shape needs " + std::to_string(nbytes) + " bytes");
  return e;
}

float load_le_f32(const unsigned char* p) {
  const std::uint32_t u = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                          (static_cast<std::uint32_t>(p[2]) << 16) |
                          (static_cast<std::uint32_t>(p[3]) << 24);
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

SafetensorsFile SafetensorsFile::from_bytes(std::vector<unsigned char> bytes) {
  const std::uint64_t size = bytes.size();
  if (size < 8)
    throw BundleError("safetensors: file of " + std::to_string(size) +
                      " bytes is too short for the 8-byte header length");
  std::uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | bytes[static_cast<std::size_t>(k)];
  if (n > kMaxHeaderBytes)
    throw BundleError("safetensors: header length " + std::to_string(n) + " exceeds the limit of " +
                      std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > size - 8)
    throw BundleError("safetensors: header length " + std::to_string(n) + " exceeds the " +
                      std::to_string(size - 8) + " bytes after the length field");

  // JSON text is UTF-8: tensor names and metadata reach Python and error messages as text
  const std::size_t bad =
      detail::first_invalid_utf8(std::string(reinterpret_cast<const char*>(bytes.data()) + 8, static_cast<std::size_t>(n)));
  if (bad != std::string::npos)
    throw BundleError("safetensors header: not valid UTF-8 at byte " + std::to_string(bad + 8));
  JsonParser parser(reinterpret_cast<const char*>(bytes.data()) + 8, static_cast<std::size_t>(n));
  const JValue root = parser.parse_document();

  const std::uint64_t data_start = 8 + n;
  const std::uint64_t data_size = size - data_start;

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& kv : root.obj) {
    if (kv.first == "__metadata__") {
      if (kv.second.kind != JValue::kObject)
        throw BundleError("safetensors: __metadata__ must be an object");
      for (const auto& m : kv.second.obj) {
        if (m.second.kind != JValue::kString)
          throw BundleError("safetensors: __metadata__ value for '" + m.first + "' must be a string");
        out.metadata_[m.first] = m.second.s;
      }
      continue;
    }
    Entry e = parse_entry(kv.first, kv.second);
    if (e.end > data_size)
      tensor_fail(e.name, offsets_str(e.begin, e.end) + " exceed the data region of " +
                              std::to_string(data_size) + " bytes");
    entries.push_back(std::move(e));
  }

  // Non-overlap: sort by (begin, end) and require each to start at or after the
  // previous end. Empty tensors (begin == end) never overlap anything.
  std::vector<const Entry*> order;
  for (const Entry& e : entries)
    if (e.end > e.begin) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (std::size_t k = 1; k < order.size(); ++k)
    if (order[k]->begin < order[k - 1]->end)
      tensor_fail(order[k]->name, offsets_str(order[k]->begin, order[k]->end) +
                                      " overlap tensor '" + order[k - 1]->name + "' " +
                                      offsets_str(order[k - 1]->begin, order[k - 1]->end));

  const unsigned char* data = bytes.data() + data_start;
  for (Entry& e : entries) {
    Tensor t;
    t.shape = std::move(e.shape);
    const std::size_t count = static_cast<std::size_t>((e.end - e.begin) / 4);
    t.data.resize(count);
    const unsigned char* src = data + e.begin;
    for (std::size_t k = 0; k < count; ++k) t.data[k] = load_le_f32(src + 4 * k);
    out.tensors_.emplace(e.name, std::move(t));
  }
  return out;
}

SafetensorsFile SafetensorsFile::from_file(const std::string& path) {
  std::vector<unsigned char> bytes;
  try {
    bytes = read_file_bytes(path);
  } catch (const std::runtime_error& error) {
    // every load failure of a bundle file is a BundleError
    throw BundleError(std::string("safetensors: ") + error.what());
  }
  return from_bytes(std::move(bytes));
}

bool SafetensorsFile::has(const std::string& name) const { return tensors_.count(name) != 0; }

const Tensor& SafetensorsFile::get(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) throw BundleError("tensor '" + name + "': not found in the file");
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> v;
  for (const auto& kv : tensors_) v.push_back(kv.first);
  return v;
}

// ------------------------------------------------------------ SHA-256 ----

namespace {
constexpr std::uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void sha256_block(std::uint32_t h[8], const unsigned char* b) {
  std::uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = (static_cast<std::uint32_t>(b[4 * i]) << 24) | (static_cast<std::uint32_t>(b[4 * i + 1]) << 16) |
           (static_cast<std::uint32_t>(b[4 * i + 2]) << 8) | static_cast<std::uint32_t>(b[4 * i + 3]);
  for (int i = 16; i < 64; ++i) {
    const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  std::uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; ++i) {
    const std::uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
    const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
    hh = g; g = f; f = e; e = d + t1; d = c; c = bb; bb = a; a = t1 + t2;
  }
  h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}
}  // namespace

std::string sha256_hex(const unsigned char* data, std::size_t size) {
  std::uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::size_t i = 0;
  for (; size - i >= 64; i += 64) sha256_block(h, data + i);
  unsigned char tail[128] = {0};
  const std::size_t rem = size - i;
  if (rem) std::memcpy(tail, data + i, rem);
  tail[rem] = 0x80;
  const std::size_t tail_len = rem < 56 ? 64 : 128;
  const std::uint64_t bits = static_cast<std::uint64_t>(size) * 8;
  for (int k = 0; k < 8; ++k) tail[tail_len - 1 - k] = static_cast<unsigned char>(bits >> (8 * k));
  sha256_block(h, tail);
  if (tail_len == 128) sha256_block(h, tail + 64);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (int k = 0; k < 8; ++k)
    for (int s = 28; s >= 0; s -= 4) out += hex[(h[k] >> s) & 0xF];
  return out;
}

std::string sha256_hex(const std::vector<unsigned char>& bytes) {
  return sha256_hex(bytes.data(), bytes.size());
}

}  // namespace simreal_rt
