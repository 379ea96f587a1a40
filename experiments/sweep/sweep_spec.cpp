// Implementation of sweep_spec.h.
#include "experiments/sweep/sweep_spec.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "data/util/check.h"
#include "experiments/sweep/yaml_json.h"

namespace qwenqat::experiments {

std::string SchemeSpec::name() const {
  std::string n = "w" + std::to_string(bits) +
                  (group_size == 0 ? std::string("c") : "g" + std::to_string(group_size)) +
                  (symmetric ? "" : "a");
  if (act_bits != 0) n += "-a" + std::to_string(act_bits);
  return n;
}

namespace {

// Field access with a dotted path in every message.
struct Ctx {
  const std::string& what;
  std::string grid = "grid";  // "grid" or "grid[i]" when the file lists several
  std::string at(const std::string& field) const { return what + ": " + field; }
  std::string at_grid(const std::string& field) const { return at(grid + "." + field); }
};

void check_keys(const Json& obj, const std::set<std::string>& allowed, const Ctx& ctx,
                const std::string& prefix) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!allowed.count(it.key())) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail(ctx.at(prefix + it.key()), ": unknown field (allowed: ", list, ")");
    }
  }
}

const Json& list_field(const Json& grid, const char* name, const Ctx& ctx) {
  auto it = grid.find(name);
  QWENQAT_CHECK(it != grid.end(), ctx.at_grid(name), ": missing (a non-empty list)");
  QWENQAT_CHECK(it->is_array() && !it->empty(), ctx.at_grid(name),
                ": must be a non-empty list, got ", it->dump());
  return *it;
}

template <class T, class Check>
std::vector<T> int_list(const Json& grid, const char* name, const Ctx& ctx, Check check,
                        const char* range) {
  std::vector<T> out;
  const Json& list = list_field(grid, name, ctx);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string f = ctx.grid + "." + name + "[" + std::to_string(i) + "]";
    QWENQAT_CHECK(list[i].is_number_integer(), ctx.at(f), ": must be an integer, got ",
                  list[i].dump());
    const int64_t v = list[i].get<int64_t>();
    QWENQAT_CHECK(check(v), ctx.at(f), ": ", v, " is out of range (", range, ")");
    QWENQAT_CHECK(std::find(out.begin(), out.end(), T(v)) == out.end(), ctx.at(f), ": ", v,
                  " is listed twice");
    out.push_back(T(v));
  }
  return out;
}

std::vector<std::string> string_list(const Json& grid, const char* name, const Ctx& ctx) {
  std::vector<std::string> out;
  const Json& list = list_field(grid, name, ctx);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string f = ctx.grid + "." + name + "[" + std::to_string(i) + "]";
    QWENQAT_CHECK(list[i].is_string(), ctx.at(f), ": must be a string, got ", list[i].dump());
    std::string v = list[i].get<std::string>();
    QWENQAT_CHECK(!v.empty() && std::all_of(v.begin(), v.end(),
                                            [](char c) {
                                              return std::isalnum((unsigned char)c) || c == '_' ||
                                                     c == '-' || c == '.';
                                            }),
                  ctx.at(f), ": \"", v, "\" must be non-empty and use only A-Z a-z 0-9 _ - .");
    QWENQAT_CHECK(std::find(out.begin(), out.end(), v) == out.end(), ctx.at(f), ": \"", v,
                  "\" is listed twice");
    out.push_back(std::move(v));
  }
  return out;
}

// One grid object (the lists of docs/EVALUATION.md).
SweepGrid parse_grid(const Json& grid, const Ctx& ctx) {
  SweepGrid s;
  check_keys(grid,
             {"bits", "group_size", "symmetric", "act_bits", "methods", "train_steps",
              "mixed_precision", "seeds"},
             ctx, ctx.grid + ".");
  s.bits = int_list<int>(
      grid, "bits", ctx, [](int64_t v) { return v >= 2 && v <= 8; }, "2..8");
  s.group_sizes = int_list<int>(
      grid, "group_size", ctx, [](int64_t v) { return v >= 0 && v <= (1 << 20); },
      "0 = per channel, else a positive group length");
  s.act_bits =
      grid.contains("act_bits")
          ? int_list<int>(
                grid, "act_bits", ctx, [](int64_t v) { return v == 0 || (v >= 2 && v <= 8); },
                "0 = float activations, else 2..8 (per-token dynamic)")
          : std::vector<int>{0};
  if (grid.contains("symmetric")) {
    const Json& list = list_field(grid, "symmetric", ctx);
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string f = ctx.grid + ".symmetric[" + std::to_string(i) + "]";
      QWENQAT_CHECK(list[i].is_boolean(), ctx.at(f), ": must be true or false");
      const bool v = list[i].get<bool>();
      QWENQAT_CHECK(std::find(s.symmetric.begin(), s.symmetric.end(), v) == s.symmetric.end(),
                    ctx.at(f), ": listed twice");
      s.symmetric.push_back(v);
    }
  } else {
    s.symmetric = {true};
  }
  s.methods = string_list(grid, "methods", ctx);
  for (size_t i = 0; i < s.methods.size(); ++i) {
    const auto& m = s.methods[i];
    QWENQAT_CHECK(m == "ptq" || m == "qat" || m == "qat_kd",
                  ctx.at_grid("methods[" + std::to_string(i) + "]"), ": unknown method \"", m,
                  "\" (use ptq, qat or qat_kd)");
  }
  const bool trains = std::any_of(s.methods.begin(), s.methods.end(),
                                  [](const std::string& m) { return m != "ptq"; });
  if (grid.contains("train_steps") || trains) {
    s.train_steps = int_list<int64_t>(
        grid, "train_steps", ctx, [](int64_t v) { return v >= 1; }, ">= 1 steps");
  }
  s.mixed_precision = grid.contains("mixed_precision") ? string_list(grid, "mixed_precision", ctx)
                                                       : std::vector<std::string>{"none"};
  s.seeds = grid.contains("seeds")
                ? int_list<uint64_t>(
                      grid, "seeds", ctx, [](int64_t v) { return v >= 0; }, ">= 0")
                : std::vector<uint64_t>{0};
  return s;
}

}  // namespace

SweepSpec parse_sweep(const Json& j, const std::string& what) {
  Ctx ctx{what};
  QWENQAT_CHECK(j.is_object(), what, ": a sweep file must be a JSON object");
  check_keys(j, {"name", "base_model", "data", "fp_reference", "grid", "options"}, ctx, "");
  SweepSpec s;
  auto name = j.find("name");
  if (name != j.end()) {
    QWENQAT_CHECK(name->is_string(), ctx.at("name"), ": must be a string");
    s.name = name->get<std::string>();
  }
  auto base = j.find("base_model");
  QWENQAT_CHECK(base != j.end() && base->is_string() && !base->get<std::string>().empty(),
                ctx.at("base_model"), ": required, the path of the full-precision checkpoint");
  s.base_model = base->get<std::string>();
  if (auto d = j.find("data"); d != j.end()) {
    QWENQAT_CHECK(d->is_object() || d->is_string(), ctx.at("data"),
                  ": must be a path string or an object of paths");
    s.data = *d;
  }
  if (auto fp = j.find("fp_reference"); fp != j.end()) {
    QWENQAT_CHECK(fp->is_boolean(), ctx.at("fp_reference"), ": must be true or false");
    s.fp_reference = fp->get<bool>();
  }
  if (auto o = j.find("options"); o != j.end()) {
    QWENQAT_CHECK(o->is_object(), ctx.at("options"), ": must be an object");
    s.options = *o;
  }
  auto g = j.find("grid");
  QWENQAT_CHECK(g != j.end() && (g->is_object() || (g->is_array() && !g->empty())), ctx.at("grid"),
                ": required, an object (or a non-empty list of objects whose points are joined)");
  if (g->is_object()) {
    s.grids.push_back(parse_grid(*g, ctx));
  } else {
    for (size_t i = 0; i < g->size(); ++i) {
      Ctx gctx{what, "grid[" + std::to_string(i) + "]"};
      QWENQAT_CHECK((*g)[i].is_object(), gctx.at(gctx.grid), ": must be an object");
      s.grids.push_back(parse_grid((*g)[i], gctx));
    }
  }
  return s;
}

SweepSpec read_sweep_file(const std::filesystem::path& path) {
  const bool yaml = path.extension() == ".yaml" || path.extension() == ".yml";
  return parse_sweep(yaml ? read_yaml_file(path) : read_json_file(path), path.string());
}

namespace {

// The points of one grid, in the order of sweep_spec.h, passed to add.
template <class Add>
void expand_grid(const SweepGrid& spec, Add& add) {
  for (int bits : spec.bits) {
    for (int group : spec.group_sizes) {
      for (bool sym : spec.symmetric) {
        for (int act : spec.act_bits) {
          const SchemeSpec scheme{bits, group, sym, act};
          for (const auto& mp : spec.mixed_precision) {
            for (const auto& method : spec.methods) {
              SweepPoint p;
              p.method = method;
              p.scheme = scheme;
              p.mixed_precision = mp;
              const std::string base = method + "-" + scheme.name() + "-mp_" + mp;
              if (method == "ptq") {
                p.id = base;
                add(p);
                continue;
              }
              for (int64_t steps : spec.train_steps) {
                for (uint64_t seed : spec.seeds) {
                  p.train_steps = steps;
                  p.seed = seed;
                  p.id = base + "-steps" + std::to_string(steps) + "-seed" + std::to_string(seed);
                  add(p);
                }
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace

std::vector<SweepPoint> expand_sweep(const SweepSpec& spec) {
  std::vector<SweepPoint> points;
  auto add = [&](SweepPoint p) {
    p.index = points.size();
    points.push_back(std::move(p));
  };
  if (spec.fp_reference) {
    SweepPoint fp;
    fp.method = "fp";
    fp.id = "fp";
    add(fp);
  }
  std::set<std::string> ids;
  auto add_new = [&](SweepPoint p) {
    if (ids.insert(p.id).second) add(std::move(p));
  };
  for (const SweepGrid& grid : spec.grids) expand_grid(grid, add_new);
  return points;
}

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  Shard s;
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < text.size() &&
            text.find_first_not_of("0123456789/") == std::string::npos &&
            text.find('/', slash + 1) == std::string::npos && text.size() < 20;
  if (ok) {
    s.index = std::stoll(text.substr(0, slash));
    s.count = std::stoll(text.substr(slash + 1));
    ok = s.count >= 1 && s.index < s.count;
  }
  QWENQAT_CHECK(ok, "--shard \"", text,
                "\": expected i/n with 0 <= i < n (0-based shard index, e.g. 0/4 .. 3/4)");
  return s;
}

std::vector<SweepPoint> shard_points(const std::vector<SweepPoint>& points, const Shard& shard) {
  QWENQAT_CHECK(shard.count >= 1 && shard.index >= 0 && shard.index < shard.count, "shard ",
                shard.index, "/", shard.count, " is invalid (need 0 <= i < n)");
  std::vector<SweepPoint> out;
  for (const auto& p : points) {
    if (int64_t(p.index % size_t(shard.count)) == shard.index) out.push_back(p);
  }
  return out;
}

}  // namespace qwenqat::experiments
