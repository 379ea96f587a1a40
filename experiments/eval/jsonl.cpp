// Implementation of jsonl.h.
#include "experiments/eval/jsonl.h"

#include <cstdio>

#include "data/util/check.h"
#include "data/util/file_io.h"

namespace qwenqat::experiments {

JsonlContents read_jsonl(const std::filesystem::path& path) {
  JsonlContents out;
  if (!std::filesystem::exists(path)) return out;
  const std::string text = read_file(path);
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    ++line_no;
    const size_t nl = text.find('\n', pos);
    const bool complete = nl != std::string::npos;
    const size_t end = complete ? nl : text.size();
    const std::string_view line(text.data() + pos, end - pos);
    const size_t next = complete ? nl + 1 : text.size();
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      pos = next;
      out.valid_bytes = complete ? next : out.valid_bytes;
      continue;
    }
    Json value;
    bool parsed = true;
    try {
      value = Json::parse(line.begin(), line.end());
    } catch (const Json::parse_error&) {
      parsed = false;
    }
    if (!parsed && !complete) {
      out.truncated_tail = true;
      out.warnings.push_back(path.string() + ": ignoring the truncated last line " +
                             std::to_string(line_no) + " (" + std::to_string(line.size()) +
                             " bytes; an interrupted write)");
      break;
    }
    QWENQAT_CHECK(parsed, path.string(), ":", line_no,
                  ": not valid JSON; the file is corrupt (fix or delete that line)");
    QWENQAT_CHECK(value.is_object(), path.string(), ":", line_no,
                  ": expected a JSON object per line");
    out.lines.push_back({line_no, std::move(value)});
    pos = next;
    out.valid_bytes = next;
  }
  return out;
}

JsonlAppender::JsonlAppender(std::filesystem::path path) : path_(std::move(path)) {
  bool needs_newline = false;
  if (std::filesystem::exists(path_)) {
    const JsonlContents contents = read_jsonl(path_);
    const uint64_t size = std::filesystem::file_size(path_);
    if (contents.truncated_tail) {
      std::error_code ec;
      std::filesystem::resize_file(path_, contents.valid_bytes, ec);
      QWENQAT_CHECK(!ec, "cannot cut the truncated last line off ", path_.string(), ": ",
                    ec.message());
    } else if (size > 0) {
      const std::string text = read_file(path_);
      needs_newline = text.back() != '\n';
    }
  } else if (path_.has_parent_path()) {
    std::filesystem::create_directories(path_.parent_path());
  }
  out_.open(path_, std::ios::binary | std::ios::app);
  QWENQAT_CHECK(out_.good(), "cannot open ", path_.string(),
                " for appending (is the directory writable?)");
  if (needs_newline) {
    out_ << '\n';
    out_.flush();
  }
}

void JsonlAppender::append(const Json& record) {
  QWENQAT_CHECK(record.is_object(), "JsonlAppender: records must be JSON objects");
  const std::string line = record.dump() + "\n";
  out_.write(line.data(), std::streamsize(line.size()));
  out_.flush();
  QWENQAT_CHECK(out_.good(), "error appending to ", path_.string(), " (disk full?)");
}

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string fnv1a_hex(const std::string& text) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a(text)));
  return buf;
}

const Json& require_field(const JsonlLine& line, const std::string& what, const char* field) {
  auto it = line.value.find(field);
  QWENQAT_CHECK(it != line.value.end(), what, ":", line.line_number, ": missing field \"", field,
                "\"");
  return *it;
}

}  // namespace qwenqat::experiments
