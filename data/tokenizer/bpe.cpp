// Implementation of bpe.h: vocab/merges parsing and the merge loop.
#include "data/tokenizer/bpe.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "data/tokenizer/text_util.h"
#include "data/util/check.h"

namespace qwenqat::data {
namespace {

constexpr size_t kMaxCachedIds = size_t{1} << 22;  // cache is cleared beyond this
constexpr size_t kMaxCachedWordBytes = 256;        // longer pieces are not cached
constexpr size_t kInitialSlots = size_t{1} << 15;

// FNV-1a with a final avalanche; words are short, so this beats std::hash.
uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

}  // namespace

BpeModel& BpeModel::operator=(BpeModel&& o) noexcept {
  id_to_bytes_ = std::move(o.id_to_bytes_);
  present_ = std::move(o.present_);
  bytes_to_id_ = std::move(o.bytes_to_id_);
  merge_slots_ = std::move(o.merge_slots_);
  num_merges_ = o.num_merges_;
  std::copy(std::begin(o.byte_ids_), std::end(o.byte_ids_), byte_ids_);
  ignore_merges_ = o.ignore_merges_;
  cache_slots_ = std::move(o.cache_slots_);
  cache_keys_ = std::move(o.cache_keys_);
  cache_ids_ = std::move(o.cache_ids_);
  cache_used_ = o.cache_used_;
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
  size_t slots = 1024;
  while (slots < 2 * merges.size()) slots *= 2;
  m.merge_slots_.assign(slots, MergeSlot{});
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
    QWENQAT_CHECK(
        ia != m.bytes_to_id_.end() && ib != m.bytes_to_id_.end() && ic != m.bytes_to_id_.end(),
        origin, ": model.merges[", rank, "] (\"", a, "\", \"", b,
        "\") uses a token missing from model.vocab");
    // The first occurrence of a pair keeps its (lowest) rank, as in tokenizers.
    m.insert_merge(pair_key(ia->second, ib->second), Merge{static_cast<int32_t>(rank), ic->second});
  }
  return m;
}

namespace {
inline size_t slot_of(uint64_t key, size_t mask) {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}
}  // namespace

void BpeModel::insert_merge(uint64_t key, Merge m) {
  const size_t mask = merge_slots_.size() - 1;
  size_t i = slot_of(key, mask);
  while (merge_slots_[i].key != kEmptyKey) {
    if (merge_slots_[i].key == key) return;
    i = (i + 1) & mask;
  }
  merge_slots_[i] = {key, m};
  ++num_merges_;
}

const BpeModel::Merge* BpeModel::find_merge(int32_t a, int32_t b) const {
  const uint64_t key = pair_key(a, b);
  const size_t mask = merge_slots_.size() - 1;
  for (size_t i = slot_of(key, mask);; i = (i + 1) & mask) {
    const MergeSlot& s = merge_slots_[i];
    if (s.key == key) return &s.merge;
    if (s.key == kEmptyKey) return nullptr;
  }
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
  // Min-heap on (rank, position): the lowest rank merges first, leftmost on ties.
  struct Item {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Item& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Symbol> sym;  // reused: no allocation per word
  thread_local std::vector<Item> heap;
  sym.resize(n);
  heap.clear();
  for (int i = 0; i < n; ++i) {
    const int32_t id = byte_ids_[static_cast<unsigned char>(word[i])];
    QWENQAT_CHECK(id >= 0, "tokenizer: byte 0x", std::hex,
                  static_cast<int>(static_cast<unsigned char>(word[i])),
                  " has no token in model.vocab (not a byte-level BPE vocabulary)");
    sym[i] = {id, i - 1, i + 1 < n ? i + 1 : -1, true};
  }
  const auto greater = std::greater<Item>();
  auto push_pair = [&](int pos) {
    if (pos < 0 || sym[pos].next < 0) return;
    if (const Merge* m = find_merge(sym[pos].id, sym[sym[pos].next].id)) {
      heap.push_back({m->rank, pos, m->new_id});
      std::push_heap(heap.begin(), heap.end(), greater);
    }
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), greater);
    const Item top = heap.back();
    heap.pop_back();
    Symbol& s = sym[top.pos];
    if (!s.alive || s.next < 0) continue;
    const Merge* m = find_merge(s.id, sym[s.next].id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale entry
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

bool BpeModel::cache_lookup(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const {
  if (cache_slots_.empty()) return false;
  const size_t mask = cache_slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const CacheSlot& s = cache_slots_[i];
    if (s.key_len == 0) return false;
    if (s.hash == hash && s.key_len == word.size() &&
        std::memcmp(cache_keys_.data() + s.key_offset, word.data(), word.size()) == 0) {
      const int32_t* p = cache_ids_.data() + s.ids_offset;
      out.insert(out.end(), p, p + s.ids_len);
      return true;
    }
  }
}

void BpeModel::cache_insert(std::string_view word, uint64_t hash, const int32_t* ids,
                            size_t n) const {
  if (cache_ids_.size() + n > kMaxCachedIds || cache_slots_.empty()) {
    cache_slots_.assign(kInitialSlots, CacheSlot{});
    cache_keys_.clear();
    cache_ids_.clear();
    cache_used_ = 0;
  }
  if (2 * (cache_used_ + 1) > cache_slots_.size()) {  // keep the load below 1/2
    std::vector<CacheSlot> old(cache_slots_.size() * 2);
    old.swap(cache_slots_);
    const size_t mask = cache_slots_.size() - 1;
    for (const CacheSlot& s : old) {
      if (s.key_len == 0) continue;
      size_t i = s.hash & mask;
      while (cache_slots_[i].key_len != 0) i = (i + 1) & mask;
      cache_slots_[i] = s;
    }
  }
  const size_t mask = cache_slots_.size() - 1;
  size_t i = hash & mask;
  while (cache_slots_[i].key_len != 0) {
    const CacheSlot& s = cache_slots_[i];
    if (s.hash == hash && s.key_len == word.size() &&
        std::memcmp(cache_keys_.data() + s.key_offset, word.data(), word.size()) == 0) {
      return;  // inserted meanwhile by another thread
    }
    i = (i + 1) & mask;
  }
  CacheSlot& slot = cache_slots_[i];
  slot.hash = hash;
  slot.key_offset = static_cast<uint32_t>(cache_keys_.size());
  slot.key_len = static_cast<uint16_t>(word.size());
  slot.ids_offset = static_cast<uint32_t>(cache_ids_.size());
  slot.ids_len = static_cast<uint16_t>(n);
  cache_keys_.append(word);
  cache_ids_.insert(cache_ids_.end(), ids, ids + n);
  ++cache_used_;
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
  const uint64_t hash = cacheable ? hash_bytes(word) : 0;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_lookup(word, hash, out)) return;
  }
  const size_t start = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    cache_insert(word, hash, out.data() + start, out.size() - start);
  }
}

}  // namespace qwenqat::data
