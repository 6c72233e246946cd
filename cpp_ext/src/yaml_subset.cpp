#include "simreal_rt/yaml_subset.hpp"

#include "utf8.hpp"

#include <algorithm>
#include <cstdint>
#include <set>

namespace simreal_rt::yaml {

const Node* Node::find(const std::string& key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

struct Line {
  int number;
  int indent;
  std::string text;  // content without indentation, trailing spaces or comment
};

[[noreturn]] void fail(int line, const std::string& what) {
  throw ParseError("line " + std::to_string(line) + ": " + what);
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// A quote opens a quoted scalar only where a value or key can start; elsewhere
// (e.g. "don't") it is an ordinary character of a plain scalar.
bool value_can_start_after(const std::string& s, std::size_t i) {
  std::size_t j = i;
  while (j > 0 && is_space(s[j - 1])) --j;
  if (j == 0) return true;
  const char prev = s[j - 1];
  return prev == ':' || prev == '-' || prev == '[' || prev == '{' || prev == ',';
}

// Cuts a trailing "# comment" (a '#' at the start or after a space, outside quotes).
std::string strip_comment(const std::string& s, int line) {
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote == '\'') {
      if (c == '\'') {
        if (i + 1 < s.size() && s[i + 1] == '\'') ++i;
        else quote = 0;
      }
    } else if (quote == '"') {
      if (c == '\\') ++i;
      else if (c == '"') quote = 0;
    } else if ((c == '\'' || c == '"') && value_can_start_after(s, i)) {
      quote = c;
    } else if (c == '#' && (i == 0 || is_space(s[i - 1]))) {
      return s.substr(0, i);
    }
  }
  if (quote) fail(line, "unterminated quoted string (quoted scalars must end on their line)");
  return s;
}

std::vector<Line> split_lines(const std::string& text) {
  const std::size_t bad = detail::first_invalid_utf8(text);
  if (bad != std::string::npos) {
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    fail(static_cast<int>(line), "not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  }
  std::vector<Line> lines;
  int number = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string raw = text.substr(start, end - start);
    start = end + 1;
    ++number;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    for (const char c : raw) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) fail(number, "control character in the document");
    }
    std::size_t indent = 0;
    while (indent < raw.size() && raw[indent] == ' ') ++indent;
    if (indent < raw.size() && raw[indent] == '\t') fail(number, "tab in indentation (use spaces)");
    const std::string content = trim(strip_comment(raw.substr(indent), number));
    if (content.empty()) continue;
    if (lines.empty() && content == "---") continue;
    if (content == "---" || content == "...") fail(number, "only one YAML document is allowed");
    lines.push_back({number, static_cast<int>(indent), content});
    if (end == text.size()) break;
  }
  return lines;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads a quoted scalar starting at s[i] (the quote); i ends after the closing quote.
std::string read_quoted(const std::string& s, std::size_t& i, int line) {
  const char quote = s[i++];
  std::string out;
  while (i < s.size()) {
    const char c = s[i++];
    if (quote == '\'' && c == '\'') {
      if (i < s.size() && s[i] == '\'') {
        out += '\'';
        ++i;
        continue;
      }
      return out;
    }
    if (quote == '"' && c == '"') return out;
    if (quote == '"' && c == '\\') {
      if (i >= s.size()) break;
      const char e = s[i++];
      switch (e) {
        case '\\': out += '\\'; break;
        case '"': out += '"'; break;
        case '/': out += '/'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case 'x':
        case 'u': {
          const std::size_t digits = e == 'x' ? 2 : 4;
          if (i + digits > s.size()) fail(line, "truncated \\" + std::string(1, e) + " escape");
          std::uint32_t cp = 0;
          for (std::size_t k = 0; k < digits; ++k) {
            const int h = hex_value(s[i + k]);
            if (h < 0) fail(line, "bad hex digit in \\" + std::string(1, e) + " escape");
            cp = cp * 16 + static_cast<std::uint32_t>(h);
          }
          i += digits;
          if (cp >= 0xD800 && cp <= 0xDFFF) fail(line, "surrogate code point in \\u escape");
          append_utf8(out, cp);
          break;
        }
        default: fail(line, std::string("unsupported escape \\") + e);
      }
      continue;
    }
    out += c;
  }
  fail(line, "unterminated quoted string");
}

bool is_null_word(const std::string& s) { return s == "null" || s == "Null" || s == "NULL" || s == "~"; }

Node scalar_node(std::string text, bool quoted, int line) {
  Node n;
  n.line = line;
  if (!quoted && (text.empty() || is_null_word(text))) return n;
  n.kind = Node::Kind::SCALAR;
  n.scalar = std::move(text);
  n.quoted = quoted;
  return n;
}

void check_plain(const std::string& s, int line) {
  const char c = s.empty() ? '\0' : s[0];
  if (c == '&' || c == '*') fail(line, "anchors and aliases are not supported");
  if (c == '!') fail(line, "tags are not supported");
  if (c == '|' || c == '>') fail(line, "block scalars (| and >) are not supported");
  if (c == '@' || c == '`' || c == '%') fail(line, std::string("a plain scalar cannot start with '") + c + "'");
  if (c == '?') fail(line, "complex keys (?) are not supported");
  if (s == "-" || s.rfind("- ", 0) == 0) fail(line, "a sequence item cannot start here");
  if (s.find(": ") != std::string::npos || (s.size() > 1 && s.back() == ':'))
    fail(line, "a mapping cannot start here (missing line break?)");
}

// Flow collections ([...] and {...}) within one line.
class FlowParser {
 public:
  FlowParser(const std::string& s, int line) : s_(s), line_(line) {}

  Node parse_all(int depth) {
    Node n = value(depth, "");
    skip_spaces();
    if (i_ != s_.size()) fail(line_, "unexpected text after the value: '" + s_.substr(i_) + "'");
    return n;
  }

 private:
  void skip_spaces() {
    while (i_ < s_.size() && is_space(s_[i_])) ++i_;
  }

  Node value(int depth, const char* stops) {
    if (depth > kMaxDepth) fail(line_, "nesting deeper than " + std::to_string(kMaxDepth));
    skip_spaces();
    if (i_ < s_.size() && s_[i_] == '[') return sequence(depth);
    if (i_ < s_.size() && s_[i_] == '{') return mapping(depth);
    if (i_ < s_.size() && (s_[i_] == '\'' || s_[i_] == '"')) return scalar_node(read_quoted(s_, i_, line_), true, line_);
    const std::size_t start = i_;
    const std::string stop_chars(stops);
    while (i_ < s_.size() && stop_chars.find(s_[i_]) == std::string::npos) ++i_;
    const std::string text = trim(s_.substr(start, i_ - start));
    const bool in_flow = !stop_chars.empty();
    if (in_flow && text.find_first_of("[]{}") != std::string::npos) fail(line_, "malformed flow collection");
    check_plain(text, line_);
    return scalar_node(text, false, line_);
  }

  void expect(char c) {
    skip_spaces();
    if (i_ >= s_.size()) fail(line_, "unterminated flow collection (flow collections must end on their line)");
    if (s_[i_] != c) fail(line_, std::string("expected '") + c + "' in flow collection");
    ++i_;
  }

  bool consume(char c) {
    skip_spaces();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  Node sequence(int depth) {
    Node n;
    n.kind = Node::Kind::SEQUENCE;
    n.line = line_;
    ++i_;
    while (!consume(']')) {
      if (i_ >= s_.size()) fail(line_, "unterminated flow sequence (flow collections must end on their line)");
      n.items.push_back(value(depth + 1, ",]"));
      if (!consume(',')) {
        expect(']');
        break;
      }
    }
    return n;
  }

  Node mapping(int depth) {
    Node n;
    n.kind = Node::Kind::MAPPING;
    n.line = line_;
    ++i_;
    std::set<std::string> seen;
    while (!consume('}')) {
      if (i_ >= s_.size()) fail(line_, "unterminated flow mapping (flow collections must end on their line)");
      const Node key = value(depth + 1, ":,}");
      if (key.kind != Node::Kind::SCALAR) fail(line_, "flow mapping keys must be scalars");
      if (!seen.insert(key.scalar).second) fail(line_, "duplicate key '" + key.scalar + "'");
      expect(':');
      n.entries.emplace_back(key.scalar, value(depth + 1, ",}"));
      if (!consume(',')) {
        expect('}');
        break;
      }
    }
    return n;
  }

  const std::string& s_;
  int line_;
  std::size_t i_ = 0;
};

bool is_sequence_item(const std::string& text) { return text == "-" || text.rfind("- ", 0) == 0; }

// Splits "key: value" / "key:" into key and value text; false if text is not a mapping entry.
bool split_entry(const std::string& text, int line, std::string& key, std::string& rest) {
  std::size_t i = 0;
  if (text[0] == '\'' || text[0] == '"') {
    key = read_quoted(text, i, line);
    while (i < text.size() && is_space(text[i])) ++i;
    if (i >= text.size() || text[i] != ':') return false;
  } else {
    if (text[0] == '[' || text[0] == '{') return false;
    i = text.find(": ");
    if (i == std::string::npos) {
      if (text.back() != ':') return false;
      i = text.size() - 1;
    }
    key = trim(text.substr(0, i));
    if (key.empty()) fail(line, "empty key");
    check_plain(key, line);
  }
  rest = trim(text.substr(i + 1));
  return true;
}

class BlockParser {
 public:
  explicit BlockParser(std::vector<Line> lines) : lines_(std::move(lines)) {}

  Node parse_document() {
    if (lines_.empty()) return Node{};
    Node root = block(lines_[0].indent, 0);
    if (pos_ < lines_.size()) fail(lines_[pos_].number, "indentation does not match any enclosing block");
    return root;
  }

 private:
  Node block(int indent, int depth) {
    if (depth > kMaxDepth) fail(lines_[pos_].number, "nesting deeper than " + std::to_string(kMaxDepth));
    const Line& first = lines_[pos_];
    if (is_sequence_item(first.text)) return sequence(indent, depth);
    std::string key, rest;
    if (split_entry(first.text, first.number, key, rest)) return mapping(indent, depth);
    ++pos_;
    Node n = FlowParser(first.text, first.number).parse_all(depth);
    if (pos_ < lines_.size() && lines_[pos_].indent >= indent && depth > 0)
      fail(lines_[pos_].number, "multi-line plain scalars are not supported");
    return n;
  }

  Node sequence(int indent, int depth) {
    Node n;
    n.kind = Node::Kind::SEQUENCE;
    n.line = lines_[pos_].number;
    while (pos_ < lines_.size() && lines_[pos_].indent == indent && is_sequence_item(lines_[pos_].text)) {
      Line& line = lines_[pos_];
      if (line.text == "-") {
        ++pos_;
        if (pos_ < lines_.size() && lines_[pos_].indent > indent) n.items.push_back(block(lines_[pos_].indent, depth + 1));
        else n.items.push_back(scalar_node("", false, line.number));
        continue;
      }
      // "- item": the item's text starts a nested block at its own column, so
      // "- name: x" followed by "  dim: 3" forms one mapping.
      std::size_t offset = 1;
      while (offset < line.text.size() && line.text[offset] == ' ') ++offset;
      line.indent += static_cast<int>(offset);
      line.text = line.text.substr(offset);
      n.items.push_back(block(line.indent, depth + 1));
    }
    reject_deeper(indent);
    return n;
  }

  Node mapping(int indent, int depth) {
    Node n;
    n.kind = Node::Kind::MAPPING;
    n.line = lines_[pos_].number;
    std::set<std::string> seen;
    while (pos_ < lines_.size() && lines_[pos_].indent == indent) {
      const Line& line = lines_[pos_];
      std::string key, rest;
      if (is_sequence_item(line.text) || !split_entry(line.text, line.number, key, rest))
        fail(line.number, "expected 'key: value' in a mapping, got '" + line.text + "'");
      if (!seen.insert(key).second) fail(line.number, "duplicate key '" + key + "'");
      ++pos_;
      if (!rest.empty()) {
        n.entries.emplace_back(key, FlowParser(rest, line.number).parse_all(depth + 1));
      } else if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
        n.entries.emplace_back(key, block(lines_[pos_].indent, depth + 1));
      } else if (pos_ < lines_.size() && lines_[pos_].indent == indent && is_sequence_item(lines_[pos_].text)) {
        n.entries.emplace_back(key, sequence(indent, depth + 1));  // PyYAML writes sequences at the key's indent
      } else {
        n.entries.emplace_back(key, scalar_node("", false, line.number));
      }
    }
    reject_deeper(indent);
    return n;
  }

  void reject_deeper(int indent) const {
    if (pos_ < lines_.size() && lines_[pos_].indent > indent)
      fail(lines_[pos_].number, "unexpected indentation");
  }

  std::vector<Line> lines_;
  std::size_t pos_ = 0;
};

}  // namespace

Node parse(const std::string& text) {
  if (text.size() > kMaxBytes) throw ParseError("document larger than " + std::to_string(kMaxBytes) + " bytes");
  const std::string bom = "\xEF\xBB\xBF";  // allowed by YAML at the start; some editors write one
  const bool has_bom = text.compare(0, bom.size(), bom) == 0;
  return BlockParser(split_lines(has_bom ? text.substr(bom.size()) : text)).parse_document();
}

}  // namespace simreal_rt::yaml
