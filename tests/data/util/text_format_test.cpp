// data/util/text_format: str_printf of any length, Markdown tables padded to
// their widest cell (UTF-8 counted as code points), right-aligned rules.
#include "data/util/text_format.h"

#include <gtest/gtest.h>

#include "data/util/check.h"

namespace qwenqat {
namespace {

TEST(TextFormat, StrPrintfOfAnyLength) {
  EXPECT_EQ(str_printf("%.2f|%s|%lld", 1.5, "x", 42LL), "1.50|x|42");
  EXPECT_EQ(str_printf("%s", ""), "");
  const std::string long_text(300, 'a');
  EXPECT_EQ(str_printf("<%s>", long_text.c_str()), "<" + long_text + ">");
}

TEST(TextFormat, MarkdownTablePadsAndAligns) {
  const std::string t =
      markdown_table({"name", "n"}, {{"a", "1.00 ± 0.20"}, {"longer name", "12"}}, {false, true});
  EXPECT_EQ(t,
            "| name        |           n |\n"
            "|-------------|------------:|\n"
            "| a           | 1.00 ± 0.20 |\n"
            "| longer name |          12 |\n");
  EXPECT_EQ(markdown_table({"a"}, {}), "| a   |\n|-----|\n");  // "---" at least
}

TEST(TextFormat, MarkdownTableRejectsARaggedRow) {
  try {
    markdown_table({"a", "b"}, {{"1", "2"}, {"3"}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 1 has 1 cells"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qwenqat
