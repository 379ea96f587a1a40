// Helpers shared by the tests: where ../shared is, skipping without it, temp
// directories, running the qwenqat binary, and catching an error's message.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <filesystem>
#include <random>
#include <string>

#include "data/util/check.h"

namespace qwenqat::testing {

// ../shared beside the project (or $QWENQAT_SHARED); empty path if absent.
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("QWENQAT_SHARED")) return env;
  std::filesystem::path p = QWENQAT_SHARED_DIR;
  return std::filesystem::exists(p / "README.md") ? p : std::filesystem::path();
}

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("qwenqat-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Runs `qwenqat ARGS` with the shell; returns the exit status and fills
// `output` with stdout+stderr.
inline int run_qwenqat(const std::string& args, std::string* output = nullptr) {
  TempDir dir;
  const auto log = dir / "out.txt";
  const std::string cmd = std::string(QWENQAT_BINARY) + " " + args + " > " + log.string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  if (output) {
    std::ifstream in(log);
    output->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The message of the qwenqat::Error that f() throws; "" if it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace qwenqat::testing

#define QWENQAT_REQUIRE_SHARED(dir)                                                      \
  const std::filesystem::path dir = ::qwenqat::testing::shared_dir();                    \
  if (dir.empty()) {                                                                     \
    GTEST_SKIP() << "../shared is absent (set QWENQAT_SHARED to its path to run this)";  \
  }
