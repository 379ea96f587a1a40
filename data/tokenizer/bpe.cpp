// Implementation of bpe.h: vocab/merges parsing and the merge loop.
#include "data/tokenizer/bpe.h"

#include <queue>

#include "data/tokenizer/text_util.h"
#include "data/util/check.h"

namespace qwenqat::data {
namespace {

constexpr size_t kMaxCachedIds = size_t{1} << 22;  // cache is cleared beyond this
constexpr size_t kMaxCachedWordBytes = 256;         // longer pieces are not cached

}  // namespace

BpeModel& BpeModel::operator=(BpeModel&& o) noexcept {
  id_to_bytes_ = std::move(o.id_to_bytes_);
  present_ = std::move(o.present_);
  bytes_to_id_ = std::move(o.bytes_to_id_);
  merges_ = std::move(o.merges_);
  std::copy(std::begin(o.byte_ids_), std::end(o.byte_ids_), byte_ids_);
  ignore_merges_ = o.ignore_merges_;
  cache_ = std::move(o.cache_);
  cache_ids_ = std::move(o.cache_ids_);
  return *this;
}

BpeModel BpeModel::from_json(const Json& model, const std::string& origin) {
  QWENQAT_CHECK(model.is_object(), origin, ": \"model\" must be an object");
  const std::string type = model.value("type", std::string("BPE"));
  QWENQAT_CHECK(type == "BPE", origin, ": model.type is \"", type,
                "\"; only byte-level BPE tokenizers are supported");
  auto null_or_empty = [&](const char* field) {
    if (!model.contains(field) || model[field].is_null()) return true;
    return model[field].is_string() && model[field].get<std::string>().empty();
  };
  QWENQAT_CHECK(null_or_empty("continuing_subword_prefix") && null_or_empty("end_of_word_suffix"),
                origin, ": model.continuing_subword_prefix/end_of_word_suffix are not supported");
  QWENQAT_CHECK(!model.value("byte_fallback", false), origin,
                ": model.byte_fallback=true is not supported (byte-level BPE needs no fallback)");
  QWENQAT_CHECK(!model.contains("dropout") || model["dropout"].is_null() ||
                    model["dropout"].get<double>() == 0.0,
                origin, ": model.dropout is not supported for encoding; set it to null");
  QWENQAT_CHECK(model.contains("vocab") && model["vocab"].is_object(), origin,
                ": model.vocab must be an object of token -> id");
  BpeModel m;
  m.ignore_merges_ = model.value("ignore_merges", false);
  std::string bytes;
  for (const auto& [token, id_json] : model["vocab"].items()) {
    QWENQAT_CHECK(id_json.is_number_integer(), origin, ": model.vocab[\"", token,
                  "\"] must be an integer id");
    const int64_t id = id_json.get<int64_t>();
    QWENQAT_CHECK(id >= 0 && id < (int64_t{1} << 24), origin, ": model.vocab[\"", token,
                  "\"] = ", id, " is out of range [0, 2^24)");
    // Tokens outside the byte-level alphabet cannot be produced by encoding;
    // they keep their UTF-8 text for decoding (as Hugging Face's decoder does).
    if (!byte_level_to_bytes(token, &bytes)) bytes = token;
    if (static_cast<size_t>(id) >= m.id_to_bytes_.size()) {
      m.id_to_bytes_.resize(id + 1);
      m.present_.resize(id + 1, 0);
    }
    QWENQAT_CHECK(!m.present_[id], origin, ": model.vocab id ", id, " is used twice");
    m.id_to_bytes_[id] = bytes;
    m.present_[id] = 1;
    m.bytes_to_id_.emplace(bytes, static_cast<int32_t>(id));
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = m.bytes_to_id_.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
    m.byte_ids_[b] = it == m.bytes_to_id_.end() ? -1 : it->second;
  }
  const Json empty = Json::array();
  const Json& merges = model.contains("merges") ? model["merges"] : empty;
  QWENQAT_CHECK(merges.is_array(), origin, ": model.merges must be an array");
  m.merges_.reserve(merges.size() * 2);
  std::string left, right;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Json& mj = merges[rank];
    std::string a, b;
    if (mj.is_string()) {
      const std::string s = mj.get<std::string>();
      const size_t sp = s.find(' ');
      QWENQAT_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < s.size() &&
                        s.find(' ', sp + 1) == std::string::npos,
                    origin, ": model.merges[", rank, "] = \"", s,
                    "\" must be two tokens separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else {
      QWENQAT_CHECK(mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string(),
                    origin, ": model.merges[", rank, "] must be \"a b\" or [\"a\", \"b\"]");
      a = mj[0].get<std::string>();
      b = mj[1].get<std::string>();
    }
    QWENQAT_CHECK(byte_level_to_bytes(a, &left) && byte_level_to_bytes(b, &right), origin,
                  ": model.merges[", rank, "] has a token outside the byte-level alphabet");
    const auto ia = m.bytes_to_id_.find(left), ib = m.bytes_to_id_.find(right);
    const auto ic = m.bytes_to_id_.find(left + right);
    QWENQAT_CHECK(ia != m.bytes_to_id_.end() && ib != m.bytes_to_id_.end() &&
                      ic != m.bytes_to_id_.end(),
                  origin, ": model.merges[", rank, "] (\"", a, "\", \"", b,
                  "\") uses a token missing from model.vocab");
    // The first occurrence of a pair keeps its (lowest) rank, as in tokenizers.
    m.merges_.emplace(pair_key(ia->second, ib->second),
                      Merge{static_cast<int32_t>(rank), ic->second});
  }
  return m;
}

const std::string& BpeModel::token_bytes(int32_t id) const {
  static const std::string kEmpty;
  return has_id(id) ? id_to_bytes_[id] : kEmpty;
}

int32_t BpeModel::bytes_to_id(std::string_view bytes) const {
  const auto it = bytes_to_id_.find(bytes);
  return it == bytes_to_id_.end() ? -1 : it->second;
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    const int32_t whole = bytes_to_id(word);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  const int n = static_cast<int>(word.size());
  struct Symbol {
    int32_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Symbol> sym(n);
  for (int i = 0; i < n; ++i) {
    const int32_t id = byte_ids_[static_cast<unsigned char>(word[i])];
    QWENQAT_CHECK(id >= 0, "tokenizer: byte 0x", std::hex, static_cast<int>(
                      static_cast<unsigned char>(word[i])),
                  " has no token in model.vocab (not a byte-level BPE vocabulary)");
    sym[i] = {id, i - 1, i + 1 < n ? i + 1 : -1, true};
  }
  // Min-heap on (rank, position): the lowest rank merges first, leftmost on ties.
  struct Item {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Item& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue;
  auto push_pair = [&](int pos) {
    if (pos < 0 || sym[pos].next < 0) return;
    const auto it = merges_.find(pair_key(sym[pos].id, sym[sym[pos].next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);
  while (!queue.empty()) {
    const Item top = queue.top();
    queue.pop();
    Symbol& s = sym[top.pos];
    if (!s.alive || s.next < 0) continue;
    const auto it = merges_.find(pair_key(s.id, sym[s.next].id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale entry
    const int nx = s.next;
    s.id = top.new_id;
    sym[nx].alive = false;
    s.next = sym[nx].next;
    if (s.next >= 0) sym[s.next].prev = top.pos;
    push_pair(s.prev);
    push_pair(top.pos);
  }
  for (int i = 0; i >= 0 && i < n; i = sym[i].next) out.push_back(sym[i].id);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    const int32_t id = byte_ids_[static_cast<unsigned char>(word[0])];
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      const int32_t* p = cache_ids_.data() + it->second.first;
      out.insert(out.end(), p, p + it->second.second);
      return;
    }
  }
  const size_t start = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_ids_.size() > kMaxCachedIds) {
      cache_.clear();
      cache_ids_.clear();
    }
    const auto offset = static_cast<uint32_t>(cache_ids_.size());
    cache_ids_.insert(cache_ids_.end(), out.begin() + start, out.end());
    cache_.emplace(std::string(word),
                   std::make_pair(offset, static_cast<uint32_t>(out.size() - start)));
  }
}

}  // namespace qwenqat::data
