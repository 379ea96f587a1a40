// Implementation of gsm8k.h (the embedded set lives in embedded.cpp).
#include "data/gsm8k/gsm8k.h"

#include <functional>
#include <sstream>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/json_io.h"

namespace qwenqat::data {
namespace {

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Calls parse(line_json, line_no) for each non-blank line; a parse that throws
// Error (or a JSON syntax error) marks the line bad.
void for_each_jsonl(std::string_view text, const std::string& origin, bool skip_bad_lines,
                    ReadStats* stats, const std::function<void(const Json&, int64_t)>& parse) {
  ReadStats local;
  ReadStats& st = stats ? *stats : local;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (trim(line).empty()) continue;
    ++st.lines;
    std::string error;
    try {
      const Json j = Json::parse(line.begin(), line.end());
      QWENQAT_CHECK(j.is_object(), "not a JSON object");
      parse(j, line_no);
    } catch (const Json::exception& e) {
      error = std::string("invalid JSON (") + e.what() + ")";
    } catch (const Error& e) {
      error = e.what();
    }
    if (error.empty()) continue;
    const std::string msg = origin + ":" + std::to_string(line_no) + ": " + error;
    QWENQAT_CHECK(skip_bad_lines, msg,
                  " (fix the line, or pass --skip-bad-lines to skip and count "
                  "malformed lines)");
    ++st.bad_lines;
    if (st.first_errors.size() < 10) st.first_errors.push_back(msg);
  }
}

std::string string_field(const Json& j, const char* field) {
  QWENQAT_CHECK(j.contains(field) && j[field].is_string(), "missing string field \"", field, "\"");
  std::string s = j[field].get<std::string>();
  QWENQAT_CHECK(!trim(s).empty(), "field \"", field, "\" is empty");
  return s;
}

}  // namespace

std::vector<Gsm8kProblem> parse_gsm8k(std::string_view text, const std::string& origin,
                                      bool skip_bad_lines, ReadStats* stats) {
  std::vector<Gsm8kProblem> out;
  for_each_jsonl(text, origin, skip_bad_lines, stats, [&](const Json& j, int64_t line) {
    Gsm8kProblem p;
    p.question = string_field(j, "question");
    p.answer = string_field(j, "answer");
    const size_t mark = p.answer.rfind("####");
    QWENQAT_CHECK(mark != std::string::npos, "\"answer\" has no final \"#### N\" line");
    p.final_answer = std::string(trim(std::string_view(p.answer).substr(mark + 4)));
    QWENQAT_CHECK(!p.final_answer.empty(), "\"answer\" has an empty \"####\" final answer");
    p.line = line;
    out.push_back(std::move(p));
  });
  QWENQAT_CHECK(!out.empty(), origin,
                ": no GSM8K problems found (expected JSONL lines with "
                "\"question\" and \"answer\")");
  return out;
}

std::vector<Gsm8kProblem> read_gsm8k(const std::filesystem::path& path, bool skip_bad_lines,
                                     ReadStats* stats) {
  return parse_gsm8k(read_file(path), path.string(), skip_bad_lines, stats);
}

std::vector<Gsm8kProblem> load_gsm8k(const std::string& spec, bool skip_bad_lines,
                                     ReadStats* stats) {
  if (spec.empty() || spec == "embedded") return embedded_gsm8k();
  return read_gsm8k(spec, skip_bad_lines, stats);
}

std::string strip_calculator_annotations(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("<<", pos);
    if (open == std::string_view::npos) break;
    const size_t close = text.find(">>", open + 2);
    if (close == std::string_view::npos) break;  // unbalanced: keep the rest verbatim
    out.append(text.substr(pos, open - pos));
    pos = close + 2;
  }
  out.append(text.substr(pos));
  return out;
}

std::string solution_reasoning(std::string_view answer) {
  const size_t mark = answer.rfind("####");
  const std::string_view body = mark == std::string_view::npos ? answer : answer.substr(0, mark);
  return std::string(trim(strip_calculator_annotations(body)));
}

std::vector<PromptCompletion> read_prompt_completion_jsonl(const std::filesystem::path& path,
                                                           bool skip_bad_lines, ReadStats* stats) {
  std::vector<PromptCompletion> out;
  for_each_jsonl(read_file(path), path.string(), skip_bad_lines, stats,
                 [&](const Json& j, int64_t) {
                   PromptCompletion pc;
                   QWENQAT_CHECK(j.contains("prompt") && j["prompt"].is_string(),
                                 "missing string field \"prompt\"");
                   pc.prompt = j["prompt"].get<std::string>();
                   pc.completion = string_field(j, "completion");
                   out.push_back(std::move(pc));
                 });
  QWENQAT_CHECK(!out.empty(), path.string(), ": no {\"prompt\", \"completion\"} pairs found");
  return out;
}

}  // namespace qwenqat::data
