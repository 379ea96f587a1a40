// Implementation of tokenizer.h: loading, added-token matching, encode and
// decode. The BPE merge loop is in bpe.cpp, the regex split in pretokenizer.cpp.
#include "data/tokenizer/tokenizer.h"

#include <algorithm>

#include "data/util/check.h"
#include "data/util/file_io.h"

namespace qwenqat::data {
namespace {

void parse_normalizer(const Json& n, const std::string& origin, std::vector<NormalForm>& out) {
  if (n.is_null()) return;
  QWENQAT_CHECK(n.is_object() && n.contains("type") && n["type"].is_string(), origin,
                ": \"normalizer\" must be null or an object with a \"type\"");
  const std::string type = n["type"].get<std::string>();
  if (type == "Sequence") {
    QWENQAT_CHECK(n.contains("normalizers") && n["normalizers"].is_array(), origin,
                  ": normalizer Sequence needs a \"normalizers\" array");
    for (const auto& m : n["normalizers"]) parse_normalizer(m, origin, out);
  } else if (type == "NFC") {
    out.push_back(NormalForm::kNfc);
  } else if (type == "NFD") {
    out.push_back(NormalForm::kNfd);
  } else if (type == "NFKC") {
    out.push_back(NormalForm::kNfkc);
  } else if (type == "NFKD") {
    out.push_back(NormalForm::kNfkd);
  } else {
    fail(origin, ": normalizer type \"", type,
         "\" is not supported (supported: null, NFC, NFD, NFKC, NFKD, Sequence)");
  }
}

// A special-token entry of tokenizer_config.json: a string, an object with
// "content", or null.
std::optional<std::string> config_token(const Json& config, const char* field,
                                        const std::string& origin) {
  if (!config.is_object() || !config.contains(field) || config[field].is_null()) return {};
  const Json& v = config[field];
  if (v.is_string()) return v.get<std::string>();
  QWENQAT_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(), origin,
                ": tokenizer_config.json field \"", field,
                "\" must be a string or an object with \"content\"");
  return v["content"].get<std::string>();
}

}  // namespace

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  std::filesystem::path file = path;
  if (std::filesystem::is_directory(path)) file = path / "tokenizer.json";
  QWENQAT_CHECK(std::filesystem::is_regular_file(file), "tokenizer: ", file.string(),
                " not found (pass a tokenizer.json file or the model directory holding it)");
  const Json tok = read_json_file(file);
  Json config;
  const auto config_path = file.parent_path() / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config_path)) config = read_json_file(config_path);
  return from_json(tok, config, file.string());
}

void Tokenizer::build_matcher(AddedMatcher& m, const std::vector<AddedToken>& all,
                              bool normalized) {
  for (const auto& t : all) {
    if (t.normalized != normalized || t.content.empty()) continue;
    m.tokens.push_back(&t);
    m.first_byte[static_cast<unsigned char>(t.content[0])] = true;
  }
  std::stable_sort(m.tokens.begin(), m.tokens.end(), [](const AddedToken* a, const AddedToken* b) {
    return a->content.size() > b->content.size();
  });
}

Tokenizer Tokenizer::from_json(const Json& tok, const Json& config, const std::string& origin) {
  QWENQAT_CHECK(tok.is_object(), origin, ": a tokenizer.json must be a JSON object");
  QWENQAT_CHECK(tok.contains("model"), origin, ": missing \"model\"");
  Tokenizer t;
  t.origin_ = origin;
  t.bpe_ = std::make_unique<BpeModel>(BpeModel::from_json(tok["model"], origin));
  parse_normalizer(tok.value("normalizer", Json()), origin, t.normalizers_);
  t.pre_ = PreTokenizer::from_json(tok.value("pre_tokenizer", Json()), origin);
  const Json decoder = tok.value("decoder", Json());
  const bool byte_level_decoder = decoder.is_object() && decoder.value("type", "") == "ByteLevel";
  QWENQAT_CHECK(t.pre_.has_byte_level() || byte_level_decoder, origin,
                ": not a byte-level BPE tokenizer (no ByteLevel pre_tokenizer or decoder); "
                "only byte-level BPE (GPT-2/Qwen2 style) is supported");
  t.vocab_size_ = t.bpe_->id_limit();

  if (tok.contains("added_tokens") && !tok["added_tokens"].is_null()) {
    QWENQAT_CHECK(tok["added_tokens"].is_array(), origin, ": \"added_tokens\" must be an array");
    for (const auto& a : tok["added_tokens"]) {
      QWENQAT_CHECK(a.is_object() && a.contains("id") && a["id"].is_number_integer() &&
                        a.contains("content") && a["content"].is_string(),
                    origin, ": each added_tokens entry needs an integer \"id\" and a \"content\"");
      AddedToken at;
      const int64_t id = a["id"].get<int64_t>();
      QWENQAT_CHECK(id >= 0 && id < (int64_t{1} << 24), origin, ": added token id ", id,
                    " is out of range");
      at.id = static_cast<int32_t>(id);
      at.content = a["content"].get<std::string>();
      QWENQAT_CHECK(!at.content.empty(), origin, ": added token ", id, " has empty content");
      at.special = a.value("special", false);
      at.normalized = a.value("normalized", !at.special);
      at.lstrip = a.value("lstrip", false);
      at.rstrip = a.value("rstrip", false);
      at.single_word = a.value("single_word", false);
      t.vocab_size_ = std::max(t.vocab_size_, at.id + 1);
      t.added_.push_back(std::move(at));
    }
  }
  t.added_index_.assign(t.vocab_size_, -1);
  for (size_t i = 0; i < t.added_.size(); ++i) {
    QWENQAT_CHECK(t.added_index_[t.added_[i].id] < 0, origin, ": added token id ", t.added_[i].id,
                  " appears twice");
    t.added_index_[t.added_[i].id] = static_cast<int32_t>(i);
    // The ByteLevel decoder maps a token's characters through the byte
    // alphabet when all of them are in it, and keeps its UTF-8 otherwise.
    std::string bytes;
    if (!byte_level_to_bytes(t.added_[i].content, &bytes)) bytes = t.added_[i].content;
    t.added_bytes_.push_back(std::move(bytes));
  }
  build_matcher(t.raw_matcher_, t.added_, false);
  build_matcher(t.normalized_matcher_, t.added_, true);

  auto resolve = [&](const char* field) -> std::optional<int32_t> {
    const auto content = config_token(config, field, origin);
    if (!content) return {};
    const auto id = t.token_to_id(*content);
    QWENQAT_CHECK(id.has_value(), origin, ": tokenizer_config.json ", field, " \"", *content,
                  "\" is not a token of this tokenizer");
    return id;
  };
  t.bos_id_ = resolve("bos_token");
  t.eos_id_ = resolve("eos_token");
  t.pad_id_ = resolve("pad_token");
  const bool config_decides =
      config.is_object() && (config.contains("add_bos_token") || config.contains("add_eos_token"));
  if (config_decides) {
    if (config.value("add_bos_token", false)) {
      QWENQAT_CHECK(t.bos_id_.has_value(), origin,
                    ": tokenizer_config.json sets add_bos_token but has no bos_token");
      t.prefix_ids_.push_back(*t.bos_id_);
    }
    if (config.value("add_eos_token", false)) {
      QWENQAT_CHECK(t.eos_id_.has_value(), origin,
                    ": tokenizer_config.json sets add_eos_token but has no eos_token");
      t.suffix_ids_.push_back(*t.eos_id_);
    }
  } else if (tok.contains("post_processor") && tok["post_processor"].is_object() &&
             tok["post_processor"].value("type", "") == "TemplateProcessing") {
    // "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}, ...]
    const Json& pp = tok["post_processor"];
    QWENQAT_CHECK(pp.contains("single") && pp["single"].is_array(), origin,
                  ": TemplateProcessing post_processor needs a \"single\" array");
    bool seen_sequence = false;
    for (const auto& item : pp["single"]) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      QWENQAT_CHECK(item.contains("SpecialToken") && item["SpecialToken"].contains("id"), origin,
                    ": TemplateProcessing items must be Sequence or SpecialToken");
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      const auto id = t.token_to_id(name);
      QWENQAT_CHECK(id.has_value(), origin, ": TemplateProcessing token \"", name,
                    "\" is not in the vocabulary");
      (seen_sequence ? t.suffix_ids_ : t.prefix_ids_).push_back(*id);
    }
  }
  return t;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  for (const auto& a : added_) {
    if (a.content == token) return a.id;
  }
  std::string bytes;
  if (!byte_level_to_bytes(token, &bytes)) return {};
  const int32_t id = bpe_->bytes_to_id(bytes);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

const AddedToken* Tokenizer::added_token(int32_t id) const {
  if (id < 0 || id >= vocab_size_ || added_index_[id] < 0) return nullptr;
  return &added_[added_index_[id]];
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* a = added_token(id);
  return a != nullptr && a->special;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* a = added_token(id)) return a->content;
  QWENQAT_CHECK(bpe_->has_id(id), "tokenizer ", origin_, ": token id ", id,
                " is not in the vocabulary (size ", vocab_size_, ")");
  return bytes_to_byte_level(bpe_->token_bytes(id));
}

template <class OnGap>
void Tokenizer::split_added(std::string_view text, const AddedMatcher& m, std::vector<int32_t>& out,
                            OnGap&& on_gap) const {
  if (m.empty()) {
    on_gap(text);
    return;
  }
  size_t emitted = 0;  // text[0, emitted) has been handled
  size_t pos = 0;
  while (pos < text.size()) {
    if (!m.first_byte[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    const AddedToken* hit = nullptr;
    for (const AddedToken* t : m.tokens) {  // longest first
      if (text.compare(pos, t->content.size(), t->content) == 0) {
        hit = t;
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + hit->content.size();
    if (hit->single_word) {
      size_t len;
      const bool word_before =
          start > 0 && is_word_char(decode_utf8_at(text, prev_utf8_start(text, start), &len));
      const bool word_after = stop < text.size() && is_word_char(decode_utf8_at(text, stop, &len));
      if (word_before || word_after) {  // not a whole word: this match is dropped
        pos = stop;
        continue;
      }
    }
    size_t len;
    if (hit->lstrip) {
      while (start > emitted) {
        const size_t p = prev_utf8_start(text, start);
        if (!is_unicode_whitespace(decode_utf8_at(text, p, &len))) break;
        start = p;
      }
    }
    if (hit->rstrip) {
      while (stop < text.size() && is_unicode_whitespace(decode_utf8_at(text, stop, &len))) {
        stop += len;
      }
    }
    if (start > emitted) on_gap(text.substr(emitted, start - emitted));
    out.push_back(hit->id);
    emitted = pos = stop;
  }
  if (emitted < text.size()) on_gap(text.substr(emitted));
}

void Tokenizer::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::vector<std::pair<size_t, size_t>> pieces;
  std::string prefixed;
  if (pre_.add_prefix_space() && !text.empty() && text[0] != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(text);
    text = prefixed;
  }
  pre_.split(text, pieces);
  for (const auto& [b, e] : pieces) bpe_->encode_word(text.substr(b, e - b), out);
}

void Tokenizer::encode_append(std::string_view text, std::vector<int32_t>& out) const {
  check_utf8(text, "tokenizer input");
  split_added(text, raw_matcher_, out, [&](std::string_view gap) {
    if (normalizers_.empty()) {
      split_added(gap, normalized_matcher_, out,
                  [&](std::string_view piece) { encode_plain(piece, out); });
      return;
    }
    std::string norm(gap);
    for (NormalForm f : normalizers_) norm = normalize(norm, f);
    split_added(norm, normalized_matcher_, out,
                [&](std::string_view piece) { encode_plain(piece, out); });
  });
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), prefix_ids_.begin(), prefix_ids_.end());
  encode_append(text, ids);
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

void Tokenizer::append_token_bytes(int32_t id, bool skip_special_tokens, std::string& out) const {
  if (id >= 0 && id < vocab_size_ && added_index_[id] >= 0) {
    if (skip_special_tokens && added_[added_index_[id]].special) return;
    out += added_bytes_[added_index_[id]];
    return;
  }
  QWENQAT_CHECK(bpe_->has_id(id), "tokenizer ", origin_, ": cannot decode token id ", id,
                " (valid ids are 0..", vocab_size_ - 1, " of this tokenizer)");
  out += bpe_->token_bytes(id);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) append_token_bytes(id, skip_special_tokens, bytes);
  return find_invalid_utf8(bytes) == std::string::npos ? bytes : utf8_lossy(bytes);
}

}  // namespace qwenqat::data
