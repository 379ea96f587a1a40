// JSON-lines files that survive interruptions: an appender that writes and
// flushes one record per line (so a killed run keeps every finished record),
// and a reader that tolerates a truncated last line (the record being written
// when the process died) but rejects corruption anywhere else.
// Used by the evaluation results (results.h) and the sweep results
// (experiments/sweep/sweep_results.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/util/json_io.h"

namespace qwenqat::experiments {

struct JsonlLine {
  int64_t line_number = 0;  // 1-based, for error messages
  Json value;               // always a JSON object
};

struct JsonlContents {
  std::vector<JsonlLine> lines;
  // Byte length of the valid prefix (complete lines, including their newline).
  uint64_t valid_bytes = 0;
  // True if the file ended in a partial line that was ignored.
  bool truncated_tail = false;
  std::vector<std::string> warnings;  // human-readable, e.g. about the ignored tail
};

// Reads a JSON-lines file of objects. A missing file reads as empty. Blank
// lines are skipped. The last line is ignored (with a warning) if it does not
// end in a newline and does not parse; a complete last line without a newline
// is accepted. Any other unparsable line or non-object value throws
// qwenqat::Error naming the file and line.
JsonlContents read_jsonl(const std::filesystem::path& path);

// Appends one compact JSON object per line, flushing after each. Opening
// repairs an interrupted file: a partial last line is cut off and a missing
// final newline is added, so appended records always start on a fresh line.
// Not thread-safe; one appender per file (no cross-process locking: give each
// process of a sharded run its own file and merge them afterwards).
class JsonlAppender {
 public:
  explicit JsonlAppender(std::filesystem::path path);
  // Writes `record` (an object) as one line and flushes; throws naming the file
  // on a write error.
  void append(const Json& record);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

// Stable 64-bit FNV-1a hash of a string, as 16 lowercase hex digits.
std::string fnv1a_hex(const std::string& text);
uint64_t fnv1a(const std::string& text);

// Typed field access with errors naming the file, line and field.
const Json& require_field(const JsonlLine& line, const std::string& what, const char* field);

}  // namespace qwenqat::experiments
