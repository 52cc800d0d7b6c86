// ThreadPool and parallel_for: the one place Cohort's core creates threads.
//
// ThreadPool runs submitted jobs on N workers; each job learns the index of the worker that
// runs it (so callers can keep per-worker state such as a Trainer). parallel_for splits a
// range into chunks whose boundaries depend only on the range and the grain, never on the
// number of threads, so reductions built on it are bit-identical for any thread count.
//
// Thread safety: submit() and parallel_for() may be called from any thread. A job must not
// wait on another job of the same pool (no nested waits); parallel_for called from inside a
// worker of the same pool runs inline.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

namespace cohort {

class ThreadPool {
 public:
  // What an idle worker does before it sleeps: with a budget, it first spins up to `budget`
  // on the queue's length (no lock, no system call) while `allowed()` (asked once per idle
  // spell; empty = always) says its core is its own. For a pool fed short jobs in bursts by
  // one thread, e.g. the simulator between rounds: waking a sleeping worker costs a futex
  // call and a scheduler hop, tens of microseconds. Off by default.
  struct IdleSpin {
    std::chrono::nanoseconds budget{0};
    std::function<bool()> allowed;
  };

  // num_threads == 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(size_t num_threads = 0);
  ThreadPool(size_t num_threads, IdleSpin idle_spin);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size(); }
  // Jobs submitted and not yet picked up by a worker (a relaxed read: a hint for feeders).
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }

  // Runs fn(worker_index) on some worker with no result channel of its own: the job reports
  // through its own state (post_with_slot below). Same order as submit().
  void post(std::function<void(size_t)> fn, double priority = 0.0) {
    enqueue(std::move(fn), priority);
  }

  // Runs fn(worker_index) on some worker; the future yields its result. Queued jobs run in
  // order of decreasing `priority`, submission order among equals (e.g. the simulator gives
  // bigger training tasks a higher priority so a round's longest job does not start last).
  template <typename F>
  auto submit(F&& fn, double priority = 0.0) -> std::future<decltype(fn(size_t{0}))> {
    using R = decltype(fn(size_t{0}));
    auto task = std::make_shared<std::packaged_task<R(size_t)>>(std::forward<F>(fn));
    std::future<R> fut = task->get_future();
    enqueue(
        [task](size_t w) {
          (*task)(w);
        },
        priority);
    return fut;
  }

  // Calls fn(lo, hi) over [begin, end) in chunks of `grain` elements (the last may be
  // shorter) and waits for all of them. The calling thread works alongside size() - 1 workers,
  // so size() threads take part. Runs inline when the range is one chunk, the pool has one
  // thread, or the caller is one of this pool's workers.
  void parallel_for(int64_t begin, int64_t end, int64_t grain,
                    const std::function<void(int64_t, int64_t)>& fn);

  // True when the calling thread is a worker of this pool.
  bool in_worker() const;

 private:
  struct Job {
    double priority;
    uint64_t seq;
    std::function<void(size_t)> fn;
    bool operator<(const Job& o) const {  // max-heap: higher priority, then earlier seq
      return priority != o.priority ? priority < o.priority : seq > o.seq;
    }
  };
  void enqueue(std::function<void(size_t)> job, double priority = 0.0);
  void worker_loop(size_t index);
  // Spins per idle_spin_ until a job is queued or the budget is spent.
  void spin_while_idle() const;

  const IdleSpin idle_spin_;           // set before the workers start
  std::atomic<int64_t> queued_{0};     // queue_.size(), readable without the lock
  std::atomic<bool> stopping_{false};  // stop_, readable without the lock
  std::vector<std::thread> workers_;
  std::priority_queue<Job> queue_;
  uint64_t next_seq_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

// One round of a spin-wait: a few dozen pause instructions (they let the other hyperthread
// run and save power), then the caller checks its condition and clock again.
inline void spin_pause() {
  for (int i = 0; i < 32; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

// Spins until `done()` or `budget` is spent (checking the clock between rounds of pauses);
// returns whether `done()` held. A budget of zero asks once.
template <typename Pred>
bool spin_until(Pred done, std::chrono::nanoseconds budget) {
  if (done()) return true;
  if (budget.count() <= 0) return false;
  const auto until = std::chrono::steady_clock::now() + budget;
  while (!done()) {
    spin_pause();
    if (std::chrono::steady_clock::now() >= until) return done();
  }
  return true;
}

// Spins up to `budget` on `f`'s ready flag (a load, no system call) and returns when it is
// ready or the budget is spent; the caller then get()s it, sleeping only if it is still
// running. For a thread that waits on many short jobs and has a core of its own: a futex
// sleep and wake-up costs each side about as much as a one-step training task. A budget of
// zero returns at once.
template <typename T>
void wait_spinning(const std::future<T>& f, std::chrono::nanoseconds budget) {
  if (budget.count() <= 0 || !f.valid()) return;
  // timeout: still running (ready: done; deferred: runs only when get() is called).
  spin_until(
      [&f] {
        return f.wait_for(std::chrono::seconds(0)) != std::future_status::timeout;
      },
      budget);
}

// A one-shot result handed from a pool job to one waiting thread: the job set()s it once, the
// waiter take()s it, spinning up to a budget on the ready flag (a load, no system call) before
// sleeping on it (std::atomic::wait). Lighter than a packaged_task and its future (no call_once,
// no separate shared state): for a thread that collects many short jobs' results, e.g. the
// simulator's loop at a million one-step clients.
template <typename T>
class ResultSlot {
 public:
  void set(T value) {
    value_.emplace(std::move(value));
    publish();
  }
  // What the job threw instead: take() rethrows it (as a future's get() would).
  void set_exception(std::exception_ptr e) {
    error_ = std::move(e);
    publish();
  }
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // Waits for set() and moves the value out (once).
  T take(std::chrono::nanoseconds spin) {
    spin_until(
        [this] {
          return ready();
        },
        spin);
    ready_.wait(false, std::memory_order_acquire);
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }

 private:
  void publish() {
    ready_.store(true, std::memory_order_release);
    ready_.notify_one();
  }
  std::optional<T> value_;
  std::exception_ptr error_;
  std::atomic<bool> ready_{false};
};

// Posts fn(worker_index) to `pool` and returns the slot its result (or exception) goes to;
// one allocation holds both the job and the slot, released when the slot is.
template <typename F>
auto post_with_slot(ThreadPool& pool, F&& fn, double priority = 0.0)
    -> std::shared_ptr<ResultSlot<decltype(fn(size_t{0}))>> {
  using T = decltype(fn(size_t{0}));
  struct Job {
    std::decay_t<F> fn;
    ResultSlot<T> slot;
  };
  auto job = std::make_shared<Job>(std::forward<F>(fn));
  pool.post(
      [job](size_t w) {
        try {
          job->slot.set(job->fn(w));
        } catch (...) {
          job->slot.set_exception(std::current_exception());
        }
      },
      priority);
  return std::shared_ptr<ResultSlot<T>>(job, &job->slot);
}

// The pool used by the vector kernels in ops.h. Created on first use with
// set_kernel_threads()'s value (default: all cores).
ThreadPool& kernel_pool();
// Sets the number of kernel threads; takes effect for the pool created next (call it before
// the first kernel runs, e.g. from the CLI's --threads). 0 means all cores.
void set_kernel_threads(size_t n);
size_t kernel_threads();

}  // namespace cohort
