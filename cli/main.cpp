// qwenqat: one program, one subcommand per task. Each library registers its
// own subcommands; this file only wires them up and turns errors into exit
// codes (libraries never exit).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "qwenqat: quantization-aware training, export and native inference for Qwen2 models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qwenqat 0.1.0");
  qwenqat::cli::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    // LibTorch appends a C++ backtrace after the message; users need the message.
    if (auto pos = msg.find("\nException raised from"); pos != std::string::npos) msg.resize(pos);
    std::fprintf(stderr, "qwenqat: error: %s\n", msg.c_str());
    return 1;
  }
  return 0;
}
