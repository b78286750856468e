#pragma once
// KILN_CHECK / KILN_DCHECK: invariants of our own code. Always-on CHECK aborts with a
// message; DCHECK only in debug builds. Never CHECK data from the network, disk,
// devices or config: those are errors, returned as Status.
#include <sstream>

namespace kiln::internal {

// Collects the streamed message and aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  template <typename T>
  CheckFailure& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

// Lets `cond ? (void)0 : Voidify() & CheckFailure(...) << msg` type-check.
struct Voidify {
  void operator&(const CheckFailure&) {}
};

}  // namespace kiln::internal

#define KILN_CHECK(cond) \
  (cond) ? (void)0       \
         : ::kiln::internal::Voidify() & ::kiln::internal::CheckFailure(__FILE__, __LINE__, #cond)

#ifdef NDEBUG
#define KILN_DCHECK(cond) \
  true ? (void)0          \
       : ::kiln::internal::Voidify() & ::kiln::internal::CheckFailure(__FILE__, __LINE__, #cond)
#else
#define KILN_DCHECK(cond) KILN_CHECK(cond)
#endif
