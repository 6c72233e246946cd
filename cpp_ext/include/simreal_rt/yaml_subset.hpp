// Reader for the YAML subset deploy.yaml is written in, for untrusted input.
//
// Accepted: block mappings and block sequences (PyYAML's style, where a
// sequence may sit at its parent key's indentation), "- key: value" items,
// flow collections ([a, b], {k: v}, nested), plain scalars, 'single' and
// "double" quoted scalars, comments, a leading "---". Refused with a message
// naming the line: tabs in indentation, block scalars (| >), anchors, aliases,
// tags, multi-line plain scalars, duplicate keys, nesting deeper than
// kMaxDepth, documents larger than kMaxBytes. No third-party dependency, so an
// rclcpp user links the core without yaml-cpp.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace simreal_rt::yaml {

class ParseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr std::size_t kMaxBytes = 4u << 20;
constexpr int kMaxDepth = 32;

struct Node {
  enum class Kind { NULL_VALUE, SCALAR, SEQUENCE, MAPPING };
  Kind kind = Kind::NULL_VALUE;
  int line = 0;             // 1-based line the node starts on
  std::string scalar;       // SCALAR: text after unquoting
  bool quoted = false;      // SCALAR: written in quotes (so never a number)
  std::vector<Node> items;  // SEQUENCE
  std::vector<std::pair<std::string, Node>> entries;  // MAPPING, in file order

  // MAPPING: the value for key, or nullptr.
  const Node* find(const std::string& key) const;
};

// Throws ParseError("line N: ...") on anything outside the subset.
Node parse(const std::string& text);

}  // namespace simreal_rt::yaml
