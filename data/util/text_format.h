// Text helpers of the reports: printf into a std::string, and aligned
// Markdown tables (readable in a terminal, renderable as Markdown).
#pragma once

#include <string>
#include <vector>

namespace qwenqat {

// std::snprintf into a std::string of the needed length.
__attribute__((format(printf, 1, 2))) std::string str_printf(const char* format, ...);

// A Markdown table whose columns are padded to their widest cell (counted in
// UTF-8 code points): header, a rule (":" on the right of right-aligned
// columns), then the rows. right[i] aligns column i right (numbers); a
// shorter `right` leaves the rest left-aligned. Every row must have
// header.size() cells (throws qwenqat::Error otherwise).
std::string markdown_table(const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows,
                           const std::vector<bool>& right = {});

}  // namespace qwenqat
