// The engine must never link LibTorch: this binary links only
// qwenqat_inference (and GoogleTest), so neither its dynamic dependencies
// (ldd) nor its loaded libraries may include libtorch / libc10.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

namespace {

std::string run(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return out;
  std::array<char, 4096> buf;
  while (fgets(buf.data(), buf.size(), p.get())) out += buf.data();
  return out;
}

TEST(NoTorch, InferenceTestBinaryDoesNotLinkLibTorch) {
  const std::string deps = run("ldd /proc/" + std::to_string(getpid()) + "/exe 2>&1");
  ASSERT_NE(deps.find("libc.so"), std::string::npos) << "ldd did not run: " << deps;
  EXPECT_EQ(deps.find("libtorch"), std::string::npos) << deps;
  EXPECT_EQ(deps.find("libc10"), std::string::npos) << deps;
  std::ifstream maps("/proc/self/maps");
  std::string all((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.find("libtorch"), std::string::npos);
  EXPECT_EQ(all.find("libc10"), std::string::npos);
}

}  // namespace
