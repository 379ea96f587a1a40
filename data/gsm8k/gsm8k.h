// GSM8K problems: reading the original JSONL release ({"question", "answer"},
// the answer a worked solution with <<48/2=24>> calculator annotations and a
// final "#### N" line), the embedded default set, and {"prompt",
// "completion"} JSONL for other training targets. Readers report malformed
// lines as "FILE:LINE: reason"; with skip_bad_lines they are counted and
// skipped, otherwise the first one throws. All functions are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace qwenqat::data {

struct Gsm8kProblem {
  std::string question;
  std::string answer;        // the "answer" field as released (solution + "#### N")
  std::string final_answer;  // the text after the last "####", trimmed (e.g. "18")
  int64_t line = 0;          // 1-based line in the source file; 0 for embedded problems
};

struct ReadStats {
  int64_t lines = 0;                      // non-blank lines seen
  int64_t bad_lines = 0;                  // malformed lines skipped (only with skip_bad_lines)
  std::vector<std::string> first_errors;  // up to 10 "FILE:LINE: reason" messages
};

// Reads a GSM8K JSONL file. Blank lines are ignored. Throws on an unreadable
// file, on the first malformed line unless skip_bad_lines, and when no
// problem is left.
std::vector<Gsm8kProblem> read_gsm8k(const std::filesystem::path& path, bool skip_bad_lines,
                                     ReadStats* stats = nullptr);
// Same over text already in memory; `origin` names it in messages.
std::vector<Gsm8kProblem> parse_gsm8k(std::string_view text, const std::string& origin,
                                      bool skip_bad_lines, ReadStats* stats = nullptr);

// The built-in set of GSM8K-format problems written for this project (not
// taken from GSM8K), for the README walkthrough and tests without ../shared.
std::vector<Gsm8kProblem> embedded_gsm8k();
// "embedded" (or empty) -> embedded_gsm8k(); otherwise read_gsm8k(spec).
std::vector<Gsm8kProblem> load_gsm8k(const std::string& spec, bool skip_bad_lines,
                                     ReadStats* stats = nullptr);

// Removes "<<...>>" calculator annotations ("$<<9*2=18>>18" -> "$18").
std::string strip_calculator_annotations(std::string_view text);
// The worked solution without annotations and without the "#### N" line,
// trailing whitespace trimmed.
std::string solution_reasoning(std::string_view answer);

// A training pair: the model sees prompt + completion, loss on completion.
struct PromptCompletion {
  std::string prompt;
  std::string completion;
};
// Reads {"prompt": str, "completion": str} JSONL (other fields ignored), with
// the same bad-line rules as read_gsm8k.
std::vector<PromptCompletion> read_prompt_completion_jsonl(const std::filesystem::path& path,
                                                           bool skip_bad_lines,
                                                           ReadStats* stats = nullptr);

}  // namespace qwenqat::data
