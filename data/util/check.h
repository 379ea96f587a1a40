// The project's one error type and check macro (outside LibTorch code, which
// uses TORCH_CHECK). Libraries throw; only cli/main.cpp turns errors into exit
// codes. Messages are for users: name the file, tensor, field or flag and what
// to do about it.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace qwenqat {

// Every user-facing failure of the toolkit. Thread-safe to throw from workers.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
[[noreturn]] void throw_error(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}
}  // namespace detail

// Concatenates any streamable arguments into the message of a thrown Error.
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  detail::throw_error(args...);
}

}  // namespace qwenqat

// QWENQAT_CHECK(cond, "part", value, "part", ...) throws qwenqat::Error with the
// concatenated message when cond is false.
#define QWENQAT_CHECK(cond, ...)                     \
  do {                                               \
    if (!(cond)) [[unlikely]] {                      \
      ::qwenqat::detail::throw_error(__VA_ARGS__);   \
    }                                                \
  } while (0)
