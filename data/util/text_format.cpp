// text_format.h: str_printf and padded Markdown tables.
#include "data/util/text_format.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "data/util/check.h"

namespace qwenqat {
namespace {

// Code points of UTF-8 text (bytes that do not continue a sequence).
size_t width(const std::string& s) {
  size_t n = 0;
  for (const unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::string str_printf(const char* format, ...) {
  va_list args, copy;
  va_start(args, format);
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::string s(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(s.data(), s.size() + 1, format, args);
  va_end(args);
  return s;
}

std::string markdown_table(const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows,
                           const std::vector<bool>& right) {
  std::vector<size_t> w(header.size(), 3);  // "---" at least
  for (size_t c = 0; c < header.size(); ++c) w[c] = std::max(w[c], width(header[c]));
  for (size_t r = 0; r < rows.size(); ++r) {
    QWENQAT_CHECK(rows[r].size() == header.size(), "markdown_table: row ", r, " has ",
                  rows[r].size(), " cells, the header ", header.size());
    for (size_t c = 0; c < header.size(); ++c) w[c] = std::max(w[c], width(rows[r][c]));
  }
  const auto is_right = [&](size_t c) { return c < right.size() && right[c]; };
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string pad(w[c] - width(cells[c]), ' ');
      s.append(" ").append(is_right(c) ? pad : "").append(cells[c]);
      s.append(is_right(c) ? "" : pad).append(" |");
    }
    return s + "\n";
  };
  std::string s = line(header) + "|";
  for (size_t c = 0; c < header.size(); ++c)
    s += is_right(c) ? std::string(w[c] + 1, '-') + ":|" : std::string(w[c] + 2, '-') + "|";
  s += "\n";
  for (const auto& row : rows) s += line(row);
  return s;
}

}  // namespace qwenqat
