// Implementation of write_tokenizer.h.
#include "data/tokenizer/write_tokenizer.h"

#include <set>

#include "data/tokenizer/text_util.h"
#include "data/util/check.h"
#include "data/util/json_io.h"

namespace qwenqat::data {

void write_byte_level_tokenizer(const std::filesystem::path& dir,
                                const ByteLevelTokenizerSpec& spec) {
  std::set<std::string> seen;
  Json added = Json::array();
  int id = 256;
  auto add = [&](const std::string& content, bool special) {
    QWENQAT_CHECK(!content.empty() && seen.insert(content).second,
                  "write_byte_level_tokenizer: added token \"", content,
                  "\" is empty or listed twice");
    added.push_back({{"id", id++},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", special}});
  };
  for (const auto& s : spec.special_tokens) add(s, true);
  for (const auto& s : spec.added_tokens) add(s, false);
  for (const std::string* t : {&spec.eos_token, &spec.pad_token, &spec.bos_token}) {
    QWENQAT_CHECK(t->empty() || seen.count(*t), "write_byte_level_tokenizer: \"", *t,
                  "\" (eos/pad/bos) must be one of the added tokens");
  }
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) {
    vocab[bytes_to_byte_level(std::string(1, static_cast<char>(b)))] = b;
  }
  const Json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", false},
                           {"use_regex", false}};
  Json tok = {{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", {{"type", "NFC"}}},
              {"pre_tokenizer",
               {{"type", "Sequence"},
                {"pretokenizers", Json::array({{{"type", "Split"},
                                                {"pattern", {{"Regex", kQwen2SplitPattern}}},
                                                {"behavior", "Isolated"},
                                                {"invert", false}},
                                               byte_level})}}},
              {"post_processor", byte_level},
              {"decoder", byte_level},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", ""},
                {"end_of_word_suffix", ""},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", Json::array()}}}};
  auto token_or_null = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
  Json config = {
      {"add_bos_token", !spec.bos_token.empty()},   {"add_eos_token", false},
      {"bos_token", token_or_null(spec.bos_token)}, {"eos_token", token_or_null(spec.eos_token)},
      {"pad_token", token_or_null(spec.pad_token)}, {"model_max_length", 32768},
      {"clean_up_tokenization_spaces", false},      {"tokenizer_class", "PreTrainedTokenizerFast"}};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  QWENQAT_CHECK(!ec, "write_byte_level_tokenizer: cannot create ", dir.string(), ": ",
                ec.message());
  write_json_file(dir / "tokenizer.json", tok, 2);
  write_json_file(dir / "tokenizer_config.json", config, 2);
}

}  // namespace qwenqat::data
