// Implementation of engine_adapters.h.
#include "experiments/eval/engine_adapters.h"

#include <algorithm>

#include "data/gsm8k/targets.h"
#include "data/util/check.h"
#include "inference/generate.h"
#include "inference/kv_cache.h"
#include "inference/weights.h"

namespace qwenqat::experiments {

namespace {

std::shared_ptr<const data::Tokenizer> load_tokenizer(const engine::WeightSource& src,
                                                      const std::string& path) {
  if (!path.empty()) return std::make_shared<data::Tokenizer>(data::Tokenizer::load(path));
  const std::string tok = src.tokenizer_json();
  if (tok.empty()) return nullptr;
  const std::string cfg = src.tokenizer_config_json();
  const Json cfg_json =
      cfg.empty() ? Json() : parse_json(cfg, src.origin() + ": tokenizer_config.json");
  return std::make_shared<data::Tokenizer>(data::Tokenizer::from_json(
      parse_json(tok, src.origin() + ": tokenizer.json"), cfg_json, src.origin()));
}

std::string pick_template(const std::string& requested, const engine::WeightSource& src,
                          const data::Tokenizer& tok) {
  if (requested != "auto") return std::string(data::get_template(requested).name);
  if (const auto* h5 = dynamic_cast<const engine::H5Source*>(&src)) {
    for (const auto& n : data::template_names()) {
      if (n == h5->prompt_template()) return n;
    }
  }
  return data::default_template_name(tok);
}

void add_unique(std::vector<int32_t>& ids, int64_t id) {
  if (id < 0) return;
  if (std::find(ids.begin(), ids.end(), int32_t(id)) == ids.end()) ids.push_back(int32_t(id));
}

// Text of generated ids. An id the tokenizer cannot decode (e.g. one of the
// model's padding rows past the tokenizer's vocabulary, which a badly
// degraded model may pick) becomes U+FFFD instead of aborting the evaluation.
std::string decode_lenient(const data::Tokenizer& tok, const std::vector<int32_t>& ids) {
  try {
    return tok.decode(ids);
  } catch (const Error&) {
  }
  std::vector<int32_t> run;
  std::string out;
  for (int32_t id : ids) {
    bool ok = id >= 0 && id < tok.vocab_size();
    if (ok) {
      try {
        std::string piece;
        tok.append_token_bytes(id, false, piece);
      } catch (const Error&) {
        ok = false;
      }
    }
    if (ok) {
      run.push_back(id);
      continue;
    }
    out += tok.decode(run) + "\xEF\xBF\xBD";
    run.clear();
  }
  return out + tok.decode(run);
}

}  // namespace

EngineModel load_engine_model(const EngineModelOptions& o) {
  EngineModel m;
  // The pool first: it validates --threads before the (slow) model load.
  m.pool = std::make_shared<engine::ThreadPool>(
      o.threads == 0 ? engine::ThreadPool::hardware_threads() : o.threads);
  const engine::ActQuant act = engine::parse_act_quant(o.act_quant, "--act-quant");
  auto src = engine::open_weight_source(o.model, engine::map_mode(o.mmap));
  m.tokenizer = load_tokenizer(*src, o.tokenizer);
  QWENQAT_CHECK(m.tokenizer || !o.need_tokenizer, "--model ", o.model.string(),
                " has no tokenizer; pass --tokenizer PATH (a tokenizer.json or its directory)");
  m.model = std::make_shared<engine::Model>(src);
  m.model->set_act_quant(act);
  const auto& cfg = m.model->config();
  add_unique(m.eos_ids, cfg.eos_token_id);
  if (m.tokenizer) {
    QWENQAT_CHECK(m.tokenizer->vocab_size() <= cfg.vocab_size, "tokenizer ", m.tokenizer->origin(),
                  " has ", m.tokenizer->vocab_size(), " tokens but --model ", o.model.string(),
                  " has only ", cfg.vocab_size,
                  " vocabulary rows; use the tokenizer the model was trained with");
    m.template_name = pick_template(o.templ, *src, *m.tokenizer);
    const auto& t = data::get_template(m.template_name);
    data::check_template_tokens(t, *m.tokenizer);
    if (const auto eos = m.tokenizer->eos_id()) add_unique(m.eos_ids, *eos);
    if (const auto eot = m.tokenizer->token_to_id(data::end_of_turn_text(t, *m.tokenizer))) {
      add_unique(m.eos_ids, *eot);
    }
  }
  return m;
}

EngineGenerator::EngineGenerator(EngineModel m) : m_(std::move(m)) {
  QWENQAT_CHECK(m_.model && m_.pool && m_.tokenizer,
                "EngineGenerator needs a model, a thread pool and a tokenizer");
  QWENQAT_CHECK(!m_.eos_ids.empty(),
                "the model has no EOS token (neither config.json's "
                "eos_token_id nor the tokenizer's eos_token): generation could never finish; "
                "pass a --tokenizer whose tokenizer_config.json names eos_token");
}

std::vector<GenerationResult> EngineGenerator::generate(const std::vector<std::string>& prompts,
                                                        const SamplingSettings& sampling,
                                                        uint64_t seed) {
  if (prompts.empty()) return {};
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(prompts.size());
  for (const auto& p : prompts) ids.push_back(data::encode_prompt(*m_.tokenizer, p));
  engine::GenerateOptions g;
  g.max_new_tokens = sampling.max_new_tokens;
  g.sampling.temperature = float(sampling.temperature);
  g.sampling.top_p = float(sampling.top_p);
  g.sampling.seed = seed;
  g.sampling.validate();
  g.eos_ids = m_.eos_ids;
  const std::vector<engine::Generation> gens = engine::generate(*m_.model, ids, g, *m_.pool);
  QWENQAT_CHECK(gens.size() == prompts.size(), "engine returned ", gens.size(), " generations for ",
                prompts.size(), " prompts");
  std::vector<GenerationResult> out(gens.size());
  for (size_t i = 0; i < gens.size(); ++i) {
    std::vector<int32_t> tokens = gens[i].tokens;
    const bool eos = gens[i].stop_reason == "eos";
    if (eos && !tokens.empty()) tokens.pop_back();  // the EOS itself is not text
    out[i].text = decode_lenient(*m_.tokenizer, tokens);
    out[i].tokens = int64_t(tokens.size());
    out[i].finished = eos;
  }
  return out;
}

EngineLogitsSource::EngineLogitsSource(std::shared_ptr<engine::Model> model,
                                       std::shared_ptr<engine::ThreadPool> pool)
    : model_(std::move(model)), pool_(std::move(pool)) {
  QWENQAT_CHECK(model_ && pool_, "EngineLogitsSource needs a model and a thread pool");
}

int64_t EngineLogitsSource::vocab_size() const { return model_->config().vocab_size; }

std::vector<float> EngineLogitsSource::logits(const std::vector<int32_t>& ids) {
  const auto& cfg = model_->config();
  const int64_t n = int64_t(ids.size());
  QWENQAT_CHECK(n >= 1, "teacher-forced evaluation: an empty token sequence");
  QWENQAT_CHECK(n <= cfg.max_position_embeddings, "teacher-forced evaluation: a sequence of ", n,
                " tokens exceeds the model's max_position_embeddings (",
                cfg.max_position_embeddings, "); use shorter texts");
  engine::KvCache cache(cfg, 1, n, engine::KvDtype::kF32);
  std::vector<float> out;  // [n, vocab]
  model_->forward({{0, ids}}, cache, *pool_, out, /*all_positions=*/true);
  return out;
}

}  // namespace qwenqat::experiments
