// The experiments library's subcommands (see commands.h).
#include "experiments/commands.h"

#include <iostream>
#include <memory>

#include "experiments/demo.h"
#include "experiments/pipeline.h"

namespace qwenqat::experiments {

void register_commands(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  auto* demo = app.add_subcommand(
      "demo", "The main job: create a small random Qwen2 checkpoint, save it, load it back and "
              "print a forward pass summary");
  demo->add_option("--out", o->out, "Output directory")->capture_default_str();
  demo->add_option("--seed", o->seed, "Random seed of the weights")->capture_default_str();
  demo->add_option("--new-tokens", o->new_tokens, "Greedy tokens to generate with the KV cache")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  demo->add_flag("--json", o->json, "Print the summary as JSON")->capture_default_str();
  demo->callback([o] {
    const Json s = run_demo(*o);
    if (o->json) {
      std::cout << s.dump(2) << "\n";
    } else {
      print_demo_summary(s);
    }
  });
  register_sweep_commands(app);
}

}  // namespace qwenqat::experiments
