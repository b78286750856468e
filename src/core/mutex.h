#pragma once
// Mutex with Clang thread-safety annotations (checked by the clang CI build with
// -Wthread-safety). Use KILN_GUARDED_BY(mu_) on the members it protects.
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define KILN_TSA(x) __attribute__((x))
#else
#define KILN_TSA(x)
#endif
#define KILN_CAPABILITY(x) KILN_TSA(capability(x))
#define KILN_SCOPED_CAPABILITY KILN_TSA(scoped_lockable)
#define KILN_GUARDED_BY(x) KILN_TSA(guarded_by(x))
#define KILN_REQUIRES(...) KILN_TSA(requires_capability(__VA_ARGS__))
#define KILN_ACQUIRE(...) KILN_TSA(acquire_capability(__VA_ARGS__))
#define KILN_RELEASE(...) KILN_TSA(release_capability(__VA_ARGS__))
#define KILN_EXCLUDES(...) KILN_TSA(locks_excluded(__VA_ARGS__))

namespace kiln {

class KILN_CAPABILITY("mutex") Mutex {
 public:
  void Lock() KILN_ACQUIRE() { mu_.lock(); }
  void Unlock() KILN_RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class KILN_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) KILN_ACQUIRE(mu) : lock_(mu.native()) {}
  ~MutexLock() KILN_RELEASE() = default;
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

// Condition variable that waits on a MutexLock.
class CondVar {
 public:
  void Wait(MutexLock& lock) { cv_.wait(lock.native()); }
  template <typename Pred>
  void Wait(MutexLock& lock, Pred pred) {
    cv_.wait(lock.native(), pred);
  }
  template <typename Rep, typename Period, typename Pred>
  bool WaitFor(MutexLock& lock, std::chrono::duration<Rep, Period> d, Pred pred) {
    return cv_.wait_for(lock.native(), d, pred);
  }
  template <typename Clock, typename Dur, typename Pred>
  bool WaitUntil(MutexLock& lock, std::chrono::time_point<Clock, Dur> t, Pred pred) {
    return cv_.wait_until(lock.native(), t, pred);
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace kiln
