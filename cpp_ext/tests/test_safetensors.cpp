// Tests for the safetensors reader (round trips, untrusted-input rejection)
// and SHA-256. No framework.
#include "simreal_rt/safetensors.hpp"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "safetensors_test_util.hpp"

using namespace simreal_rt;
using test_util::raw_file;
using test_util::serialize;
using test_util::TensorSpec;

namespace {

std::vector<unsigned char> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

// True iff parsing throws BundleError whose message contains `needle`.
bool rejects(const std::vector<unsigned char>& file, const std::string& needle = "") {
  try {
    SafetensorsFile::from_bytes(file);
  } catch (const BundleError& e) {
    const std::string msg = e.what();
    if (msg.find(needle) == std::string::npos) {
      std::fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", msg.c_str(), needle.c_str());
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "  unexpected exception type: %s\n", e.what());
    return false;
  }
  std::fprintf(stderr, "  accepted a malformed file (expected \"%s\")\n", needle.c_str());
  return false;
}

std::vector<unsigned char> hdr(const std::string& json, std::size_t data_bytes = 0) {
  return raw_file(json, std::vector<unsigned char>(data_bytes, 0));
}

void test_sha256() {
  CHECK(sha256_hex(bytes_of("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex(bytes_of("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex(bytes_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::vector<unsigned char>(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // 55/56/64-byte boundaries of the padding logic must all differ and be 64 hex chars.
  const std::string a55 = sha256_hex(std::vector<unsigned char>(55, 'x'));
  const std::string a56 = sha256_hex(std::vector<unsigned char>(56, 'x'));
  const std::string a64 = sha256_hex(std::vector<unsigned char>(64, 'x'));
  CHECK(a55.size() == 64 && a56.size() == 64 && a64.size() == 64 && a55 != a56 && a56 != a64);
}

void test_round_trip() {
  const std::vector<TensorSpec> specs = {
      {"layers.0.weight", {2, 3}, {1.0f, -2.5f, 3.25f, 0.0f, 1e-30f, -7.0f}},
      {"layers.0.bias", {2}, {0.5f, -0.5f}},
      {"scalar", {}, {42.0f}},
      {"empty", {0, 5}, {}},
      {"name with \"quotes\" and \\ slash", {1}, {9.0f}},
  };
  const auto file = serialize(specs, {{"format", "pt"}, {"note", "tab\there"}});
  SafetensorsFile f = SafetensorsFile::from_bytes(file);
  for (const TensorSpec& s : specs) {
    CHECK(f.has(s.name));
    const Tensor& t = f.get(s.name);
    CHECK(t.shape == s.shape);
    CHECK(t.data == s.values);
  }
  CHECK(!f.has("missing"));
  CHECK(f.names().size() == specs.size());
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("note") == "tab\there");
  try {
    f.get("layers.9.weight");
    CHECK(false);
  } catch (const BundleError& e) {
    CHECK(std::string(e.what()).find("'layers.9.weight'") != std::string::npos);
  }

  // from_file round trip (temporary file outside the source tree).
  const std::string path = "/tmp/simreal_rt_test_safetensors.bin";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  }
  SafetensorsFile g = SafetensorsFile::from_file(path);
  CHECK(g.get("layers.0.bias").data == specs[1].values);
  std::remove(path.c_str());
  bool threw = false;
  try {
    SafetensorsFile::from_file("/nonexistent/dir/x.safetensors");
  } catch (const BundleError&) {
    threw = true;
  }
  CHECK(threw);

  // Empty header object, unpadded header, whitespace, escapes, \u escapes.
  CHECK(SafetensorsFile::from_bytes(raw_file("{}", {}, false)).names().empty());
  SafetensorsFile u = SafetensorsFile::from_bytes(
      hdr(" {\n\t\"a\\u00e9\\n\\ud83d\\ude00\\/\" : { \"shape\" : [ 1 ] , \"dtype\":\"F32\", "
          "\"data_offsets\" : [ 0 , 4 ] } } ",
          4));
  CHECK(u.has("a\xc3\xa9\n\xf0\x9f\x98\x80/"));
  // Tensors stored out of order in the data region are fine.
  CHECK(SafetensorsFile::from_bytes(
            hdr(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8))
            .names()
            .size() == 2);
}

void test_truncation() {
  const auto file = serialize({{"w", {2, 2}, {1, 2, 3, 4}}, {"b", {2}, {5, 6}}}, {{"k", "v"}});
  CHECK(SafetensorsFile::from_bytes(file).has("w"));
  int rejected = 0;
  for (std::size_t len = 0; len < file.size(); ++len) {
    std::vector<unsigned char> cut(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(len));
    if (rejects(cut)) ++rejected;
    else std::fprintf(stderr, "  truncation to %zu bytes not rejected\n", len);
  }
  CHECK(rejected == static_cast<int>(file.size()));
}

void test_header_length() {
  auto file = serialize({{"w", {1}, {1.0f}}});
  auto big = file;
  big[0] = static_cast<unsigned char>(big[0] + 100);  // header length past the end
  CHECK(rejects(big, "header length"));
  std::vector<unsigned char> huge = file;
  for (int k = 0; k < 8; ++k) huge[static_cast<std::size_t>(k)] = 0xFF;  // 2^64 - 1
  CHECK(rejects(huge, "exceeds the limit"));
  std::vector<unsigned char> over_limit = file;
  const std::uint64_t n = SafetensorsFile::kMaxHeaderBytes + 1;
  for (int k = 0; k < 8; ++k) over_limit[static_cast<std::size_t>(k)] = static_cast<unsigned char>(n >> (8 * k));
  CHECK(rejects(over_limit, "exceeds the limit"));
  CHECK(rejects({}, "too short"));
  CHECK(rejects({1, 0, 0}, "too short"));
  CHECK(rejects(raw_file("", {}, false), "invalid JSON"));
}

void test_bad_json() {
  const char* bad[] = {
      "",
      "[]",
      "\"x\"",
      "{",
      "}",
      "{\"a\"}",
      "{\"a\":}",
      "{\"a\":1,}",
      "{,}",
      "{\"a\":[1,]}",
      "{\"a\":[1 2]}",
      "{\"a\":true}",
      "{\"a\":null}",
      "{\"a\":-1}",
      "{\"a\":1.5}",
      "{\"a\":1e3}",
      "{\"a\":01}",
      "{\"a\":99999999999999999999999}",
      "{\"a\":\"unterminated}",
      "{\"a\":\"bad \\q escape\"}",
      "{\"a\":\"\\u12\"}",
      "{\"a\":\"\\uZZZZ\"}",
      "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\udc00\"}",
      "{\"a\":\"raw\nnewline\"}",
      "{a:1}",
      "{'a':1}",
      "{\"a\":1} x",
      "{\"a\":1}{}",
      "{\"a\":1,\"a\":2}",
      "{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
      "{\"__metadata__\":{\"k\":\"v\"",
      "\xef\xbb\xbf{}",
      "{\"t\xe8" "A\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",  // invalid UTF-8 in a name
      "{\"__metadata__\":{\"k\":\"\xc0\xaf\"}}",                                  // overlong encoding
  };
  for (const char* j : bad) {
    const bool ok = rejects(raw_file(j, {}, false));
    if (!ok) std::fprintf(stderr, "  bad JSON accepted: %s\n", j);
    CHECK(ok);
  }
  // NUL byte inside the header.
  std::string withnul = "{\"a\":1}";
  withnul[4] = '\0';
  CHECK(rejects(raw_file(withnul, {}, false)));
}

void test_bad_entries() {
  // Wrong dtype.
  CHECK(rejects(hdr(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 4),
                "tensor 'w': dtype 'F16'"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8), "tensor 'w'"));
  CHECK(rejects(hdr(R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4), "tensor 'w': dtype"));
  // Missing / unknown / mistyped fields.
  CHECK(rejects(hdr(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4), "tensor 'w': missing field 'dtype'"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4), "tensor 'w': missing field 'shape'"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[1]}})", 4), "tensor 'w': missing field 'data_offsets'"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4), "unknown field 'x'"));
  CHECK(rejects(hdr(R"({"w":[1]})", 4), "tensor 'w'"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", 4), "tensor 'w': shape"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", 4), "tensor 'w': shape"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4), "tensor 'w': data_offsets"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8), "tensor 'w': data_offsets"));
  // Shape / offset mismatch.
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 16),
                "tensor 'w': data_offsets [0, 12] span 12 bytes but the shape needs 16 bytes"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0,0]}})", 4), "tensor 'w'"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8), "end before begin"));
  // Offsets out of range.
  CHECK(rejects(hdr(R"({"layers.0.weight":{"dtype":"F32","shape":[25],"data_offsets":[0,100]}})", 64),
                "tensor 'layers.0.weight': data_offsets [0, 100] exceed the data region of 64 bytes"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]}})", 4),
                "invalid JSON"));  // 2^64 does not parse
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551611,18446744073709551615]}})", 4),
                "exceed the data region"));
  // Overlapping tensors.
  CHECK(rejects(hdr(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                "overlap"));
  CHECK(rejects(hdr(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4),
                "overlap"));
  CHECK(rejects(hdr(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 16),
                "overlap"));
  // Huge shapes that would overflow 64-bit products.
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 4),
                "tensor 'w': shape product overflows"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", 4),
                "tensor 'w': shape product overflows"));  // * 4 == 2^64 wraps to 0
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}})", 4),
                "tensor 'w': shape value"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}})", 4),
                "tensor 'w': shape value"));
  CHECK(rejects(hdr(R"({"w":{"dtype":"F32","shape":[1073741824,1073741824,16],"data_offsets":[0,0]}})", 4),
                "tensor 'w': shape product overflows"));
  // Metadata must be string -> string.
  CHECK(rejects(hdr(R"({"__metadata__":{"k":1}})"), "__metadata__"));
  CHECK(rejects(hdr(R"({"__metadata__":["k"]})"), "__metadata__"));
  // A shape with a zero dimension is a valid empty tensor even alongside huge dims that fit int64.
  CHECK(SafetensorsFile::from_bytes(hdr(R"({"w":{"dtype":"F32","shape":[0,9223372036854775807],"data_offsets":[0,0]}})"))
            .get("w").data.empty());
}

// Flip single bytes in a valid file: the parser must either accept or throw
// BundleError, never crash or throw anything else.
void test_mutations() {
  const auto file = serialize({{"w", {2, 2}, {1, 2, 3, 4}}, {"b", {2}, {5, 6}}}, {{"k", "v"}});
  int other = 0;
  const unsigned char vals[] = {0x00, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5c, 0x7b, 0x7d, 0xff};
  for (std::size_t i = 0; i < file.size(); ++i) {
    for (unsigned char v : vals) {
      auto m = file;
      m[i] = v;
      try {
        SafetensorsFile::from_bytes(m);
      } catch (const BundleError&) {
      } catch (...) {
        ++other;
      }
    }
  }
  CHECK(other == 0);
}

}  // namespace

int main() {
  test_sha256();
  test_round_trip();
  test_truncation();
  test_header_length();
  test_bad_json();
  test_bad_entries();
  test_mutations();
  return test_util::finish("test_safetensors");
}
