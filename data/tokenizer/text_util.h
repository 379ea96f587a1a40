// Text helpers for the tokenizer: UTF-8 validation and lossy repair, Unicode
// normalization (utf8proc), and the GPT-2 "ByteLevel" byte <-> character
// alphabet used by byte-level BPE vocabularies. All functions are pure and
// thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qwenqat::data {

// Byte offset of the first byte that is not part of well-formed UTF-8
// (Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF),
// or npos when `s` is entirely valid.
size_t find_invalid_utf8(std::string_view s);

// Throws qwenqat::Error naming `what` and the byte offset when `s` is not
// valid UTF-8.
void check_utf8(std::string_view s, std::string_view what);

// Replaces each maximal ill-formed subsequence with U+FFFD, exactly as Rust's
// String::from_utf8_lossy (and so Hugging Face decode) does.
std::string utf8_lossy(std::string_view bytes);

// Length of the longest suffix of `bytes` that is a proper, still-completable
// prefix of a well-formed UTF-8 sequence (0..3). A streaming decoder holds
// these bytes back until the next token arrives.
size_t incomplete_utf8_suffix(std::string_view bytes);

// Unicode normalization forms, as in Hugging Face normalizers.
enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
// Normalizes valid UTF-8 `s` (callers validate first; throws on failure).
// ASCII-only input is returned unchanged without calling utf8proc.
std::string normalize(std::string_view s, NormalForm form);
inline std::string nfc(std::string_view s) { return normalize(s, NormalForm::kNfc); }

// Unicode White_Space (as Rust's \s) and "word character" (Rust regex \w:
// letters, marks, Nd/Nl numbers, connector punctuation such as '_'), used by
// added-token lstrip/rstrip/single_word.
bool is_unicode_whitespace(char32_t c);
bool is_word_char(char32_t c);
// Decodes the code point starting at s[i] (valid UTF-8); sets *len.
char32_t decode_utf8_at(std::string_view s, size_t i, size_t* len);
// Start of the code point that ends right before s[end] (valid UTF-8, end > 0).
size_t prev_utf8_start(std::string_view s, size_t end);
void append_utf8(std::string& out, char32_t c);

// The GPT-2 byte-level alphabet: byte b <-> a printable code point
// (bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF map to themselves; the other 68
// bytes map to U+0100.. in order).
const std::array<char32_t, 256>& byte_to_char_table();
// Inverse: code point -> byte, or -1 when c is not in the alphabet.
int char_to_byte(char32_t c);
// Converts a byte-level token string (valid UTF-8, e.g. "Ġthe") to raw bytes (" the").
// Returns false (and leaves `out` unspecified) if a character is not in the
// alphabet.
bool byte_level_to_bytes(std::string_view token, std::string* out);
// Converts raw bytes to their byte-level string.
std::string bytes_to_byte_level(std::string_view bytes);

}  // namespace qwenqat::data
